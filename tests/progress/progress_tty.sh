#!/usr/bin/env bash
# progress_tty.sh DEMO [LAUNCHER...] - the progress bar in a real terminal: runs DEMO (a map of
# about 1.5 s) with MPROC_PROGRESS=1 inside a detached tmux session and reads the screen with
# capture-pane: while it runs a partial bar is on screen; at the end one bar line says 100% and
# "took", redrawn in place (one line, not one per redraw), and the shell's next output starts on
# a line of its own (the bar ended its line). Under a launcher (mpirun), whose ranks write into
# pipes, the bar is plain lines, from rank 0 only. Exit 77 (skipped, saying why) only without tmux.
set -u
demo=${1:?usage: progress_tty.sh DEMO [LAUNCHER...]}
shift
command -v tmux >/dev/null || { echo "SKIP: tmux is not installed (.ci/install-deps.sh installs it)"; exit 77; }
sock=mproc-progress-$$
out=$(mktemp)
cleanup() { tmux -L "$sock" kill-server 2>/dev/null; tmux -L "$sock-narrow" kill-server 2>/dev/null; rm -f "$out"; }
trap cleanup EXIT INT TERM
cmd="env MPROC_BACKEND=${MPROC_BACKEND:-} MPROC_PROGRESS=1 $* $demo; echo EXIT=\$?; sleep 60"
[ -z "${MPROC_BACKEND:-}" ] && cmd="env -u MPROC_BACKEND MPROC_PROGRESS=1 $* $demo; echo EXIT=\$?; sleep 60"
tmux -L "$sock" new-session -d -x 120 -y 30 "$cmd" || { echo "FAIL: tmux could not start a session"; exit 1; }
screen() { tmux -L "${1:-$sock}" capture-pane -p -t 0 >"$out" 2>/dev/null; }
saw_partial=0
for _ in $(seq 1 300); do # up to 30 s
    sleep 0.1
    screen
    grep -q 'nap10 \[#*\.\+\] *[0-9]\+% ' "$out" && saw_partial=1
    grep -q '^EXIT=' "$out" && break
done
echo "--- screen at the end:"; cat "$out"; echo "---"
fail=0
grep -q '^EXIT=0' "$out" || { echo "FAIL: the demo did not end with status 0"; fail=1; }
grep -q '^sum=44850$' "$out" || { echo "FAIL: the demo's result line is missing or wrong"; fail=1; }
finals=$(grep -c 'nap10 \[#\{28\}\] 100% 300/300 .* took [0-9]' "$out")
[ "$finals" = 1 ] || { echo "FAIL: $finals final bars saying 100% and took, want 1"; fail=1; }
if [ $# = 0 ]; then
    # A terminal: one line redrawn in place.
    [ $saw_partial = 1 ] || { echo "FAIL: no partial bar was ever on screen"; fail=1; }
    bars=$(grep -c 'nap10 \[' "$out")
    [ "$bars" = 1 ] || { echo "FAIL: $bars bar lines on screen, want 1 (redrawn in place)"; fail=1; }
    grep -q '^mproc: ' "$out" && { echo "FAIL: plain lines on a terminal"; fail=1; }
else
    # Under mpirun the ranks' output reaches the terminal through pipes: plain lines, from
    # rank 0 only (one final line, checked above).
    grep -q '^mproc: nap10 \[' "$out" || { echo "FAIL: no plain progress line under the launcher"; fail=1; }
fi
# The bar's last line ends before the program's own output (through one terminal, in order).
[ $# = 0 ] && { awk '/nap10 \[/{b=NR} /^sum=/{s=NR} END{exit !(b && s == b + 1)}' "$out" ||
    { echo "FAIL: the bar did not end its line before the next output"; fail=1; }; }
# A terminal narrower than the bar's text: the line is shortened to fit, so redraws stay on
# one line instead of wrapping onto a new one each time.
if [ $# = 0 ]; then
    tmux -L "$sock" kill-server 2>/dev/null
    tmux -L "$sock-narrow" new-session -d -x 40 -y 30 "$cmd" || { echo "FAIL: tmux could not start a narrow session"; exit 1; }
    for _ in $(seq 1 300); do sleep 0.1; screen "$sock-narrow"; grep -q '^EXIT=' "$out" && break; done
    echo "--- a 40-column screen at the end:"; cat "$out"; echo "---"
    lines=$(grep -c 'nap10' "$out")
    [ "$lines" = 1 ] || { echo "FAIL: $lines bar lines on a 40-column screen, want 1"; fail=1; }
    awk 'length($0) >= 40 {bad = 1} END {exit bad}' "$out" || { echo "FAIL: a line as wide as the screen (it wrapped)"; fail=1; }
    grep -q '^sum=44850$' "$out" || { echo "FAIL: the narrow run's result line is missing"; fail=1; }
fi
[ $fail = 0 ] && echo "PASS: progress bar in a terminal${1:+ under $1}"
exit $fail
