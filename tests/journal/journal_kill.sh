#!/usr/bin/env bash
# journal_kill.sh VICTIM [LAUNCHER...] - kill -9 a long map with a journal at random points,
# many times, resuming each time: the journal grows across the kills, every item ends up
# recorded exactly once with its right result (journal_victim check), the final run's results
# equal a clean run's, and no process of the victim outlives a kill.
set -u
victim=${1:?usage: journal_kill.sh VICTIM [LAUNCHER...]}
shift
dir=$(mktemp -d)
cleanup() {
    [ -f "$dir/pid" ] && kill -9 "$(cat "$dir/pid")" 2>/dev/null
    pkill -9 -f "$victim run $dir" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM
j=$dir/journal
want_sum=$((3 * 2999 * 3000 / 2 + 3000))
kills=0 midway=0 prev=0
for attempt in $(seq 1 16); do
    rm -f "$dir/pid"
    "$@" "$victim" run "$j" "$dir/pid" >"$dir/out" 2>"$dir/err" &
    bg=$!
    # Wait for the master to start, then kill it after a random 0.2-1.0 s of mapping.
    for _ in $(seq 1 100); do [ -s "$dir/pid" ] && break; sleep 0.1; done
    sleep "0.$((RANDOM % 9 + 2))"
    if kill -0 "$bg" 2>/dev/null && [ -s "$dir/pid" ]; then
        kill -9 "$(cat "$dir/pid")" 2>/dev/null && kills=$((kills + 1))
    fi
    # The launcher (or the shell's child) ends within 20 s.
    for _ in $(seq 1 200); do kill -0 "$bg" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$bg" 2>/dev/null && { echo "FAIL: attempt $attempt: the killed run did not end"; exit 1; }
    wait "$bg" 2>/dev/null
    sleep 0.5
    left=$(pgrep -f "$victim run $dir" | wc -l)
    [ "$left" = 0 ] && : || { echo "FAIL: $left processes of the victim outlived the kill"; pgrep -af "$victim run $dir"; exit 1; }
    grep -q '^sum=' "$dir/out" && break # it finished before the kill
    n=$("$victim" check "$j" 2>&1) || { echo "FAIL: after kill $kills: $n"; exit 1; }
    n=${n#records=}
    [ "$n" -gt "$prev" ] && [ "$n" -lt 3000 ] && midway=$((midway + 1))
    echo "kill $kills: $n of 3000 items in the journal"
    prev=$n
done
# Resume to the end.
"$@" "$victim" run "$j" "$dir/pid" >"$dir/out" 2>"$dir/err" || { echo "FAIL: the last run failed"; cat "$dir/err"; exit 1; }
grep -q "^sum=$want_sum\$" "$dir/out" || { echo "FAIL: results differ from a clean run: $(cat "$dir/out")"; exit 1; }
n=$("$victim" check "$j") || { echo "FAIL: $n"; exit 1; }
[ "$n" = records=3000 ] || { echo "FAIL: $n, want records=3000"; exit 1; }
[ "$midway" -ge 3 ] || { echo "FAIL: only $midway kills landed mid-map (want 3 or more): the test proved too little"; exit 1; }
echo "PASS: $kills kills ($midway mid-map), every item recorded once, results right"
