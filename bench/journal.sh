#!/usr/bin/env bash
# journal.sh - what a map's journal costs (mproc_call_opts.journal), on the fork backend with two
# workers, in the same minutes: `mproc_bench jmap` over
#   map:   10M longs of x*x in chunks of 10,000 (80 MB of results: the journal writes them all)
#   apply: 200,000 items in chunks of 1 (a record per task, as a stream of small calls makes)
# under the policies none (no journal), interval (the default), always and never, plus, for the
# map, writeall: no journal, the out array written to a file after the map - the least a
# program that keeps its results must do, the floor the journal is held to where its writes
# dominate. All interleaved in shuffled order, REPS times (default 5; BENCH_REPS overrides).
# Writes bench/results/journal.md (BENCH_OUT overrides) and prints it.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
out=${BENCH_OUT:-$root/bench/results}
build=${MPROC_BUILD_DIR:-$root/build-bench}
reps=${BENCH_REPS:-5}
mkdir -p "$out"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$build" -j "$(nproc)" --target mproc_bench >/dev/null ||
    { echo "journal.sh: building mproc_bench failed" >&2; exit 1; }
runs=("map 10000000 10000 none" "map 10000000 10000 writeall" "map 10000000 10000 interval" "map 10000000 10000 always"
      "map 10000000 10000 never" "apply 200000 1 none" "apply 200000 1 interval" "apply 200000 1 always" "apply 200000 1 never")
declare -A vals
for ((r = 1; r <= reps; r++)); do
    while read -r spec; do
        read -r w n c p <<<"$spec"
        v=$(MPROC_BACKEND=fork timeout 300 "$build/bench/mproc_bench" jmap "$n" "$c" "$p" 2>/dev/null |
            grep '^RESULT' | grep ' check=ok' | grep -o ' value=[0-9.e+-]*' | cut -d= -f2)
        vals["$spec"]="${vals["$spec"]:-} ${v:-nan}"
    done < <(printf '%s\n' "${runs[@]}" | shuf)
done
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
{
    echo "The journal's cost, fork backend, 2 workers, $reps interleaved runs each, $(nproc) cores, $(date -u +%Y-%m-%d)."
    echo "Page-cache writes on this machine: $(dd if=/dev/zero of="$out/.dd" bs=1M count=200 2>&1 | tail -1 | awk '{print $(NF-1), $NF}') (dd)."
    rm -f "$out/.dd"
    echo
    echo "| workload | policy | items/s (median) | / no journal | / writeall | runs |"
    echo "|---|---|---:|---:|---:|---|"
    for spec in "${runs[@]}"; do
        read -r w n c p <<<"$spec"
        m=$(median "${vals["$spec"]}")
        base=$(median "${vals["$w $n $c none"]}")
        floor=$(median "${vals["$w $n $c writeall"]:-}")
        r1=$(awk -v a="$m" -v b="$base" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
        r2=$(awk -v a="$m" -v b="${floor:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
        echo "| $w ($n items, chunks of $c) | $p | $m | $r1 | $r2 | ${vals["$spec"]} |"
    done
} >"$out/journal.md"
cat "$out/journal.md"
