#!/usr/bin/env bash
# scale.sh - what the master costs as the rank count grows: mproc_bench scale (N apply_async
# and a map of 100 N items in chunks of 100, on a pool of every worker rank) under
# mpirun -np 3, 9, 17, 33, 65 on this machine (oversubscribed), 3 runs each: the master's own
# CPU time per task (every thread of it, so oversubscription does not flatter it) and its peak
# RSS. Writes bench/results/scale.md (BENCH_OUT overrides) and prints it.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
out=${BENCH_OUT:-$root/bench/results}
build=${MPROC_BUILD_DIR:-$root/build-bench}
mkdir -p "$out"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$build" -j "$(nproc)" --target mproc_bench >/dev/null ||
    { echo "scale.sh: building mproc_bench failed" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
{
    echo "| ranks | workers | master CPU per task (us), median of 3 | runs | master peak RSS (MiB) |"
    echo "|---:|---:|---:|---|---:|"
    for np in 3 9 17 33 65; do
        vals="" rss="" w=""
        for r in 1 2 3; do
            line=$(timeout 300 mpirun --oversubscribe -np "$np" "$build/bench/mproc_bench" scale 5000 2>/dev/null | grep '^RESULT')
            v=$(grep -o 'value=[0-9.]*' <<<"$line" | cut -d= -f2)
            rss=$(grep -o 'rss_mib=[0-9.]*' <<<"$line" | cut -d= -f2)
            w=$(grep -o 'workers=[0-9]*' <<<"$line" | cut -d= -f2)
            vals="$vals ${v:-nan}"
        done
        med=$(tr ' ' '\n' <<<"$vals" | grep -v '^$' | sort -g | sed -n 2p)
        echo "| $np | ${w:-?} | $med | $vals | ${rss:-?} |"
    done
} >"$out/scale.md"
cat "$out/scale.md"
