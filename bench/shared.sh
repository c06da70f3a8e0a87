#!/usr/bin/env bash
# shared.sh - what the shared objects (mproc_shared.h) cost, in the same minutes, between a
# master and one other process:
#   queue  a Process puts 8-byte items, the master gets them (items/s)
#   qrtt   a round trip through two queues (us)
#   lock   an uncontended Lock acquire+release (ns)
#   lockc  two processes each acquire+increment+release one Lock (ns per pair)
# for mproc on fork, mproc under `mpirun -np 2` (the Process on worker rank 1, in its executor),
# the hand-written floors (bench/peers/c_shared_floor.c: a pipe with a write per item for the
# queue, two pipes for the round trip, a process-shared pthread mutex - plain, and robust with
# error checking as mproc's Lock is) and Python's multiprocessing (Queue, Lock). Interleaved in
# shuffled order, REPS times (default 3; BENCH_REPS overrides). Writes bench/results/shared.md.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
out=${BENCH_OUT:-$root/bench/results}
build=${MPROC_BUILD_DIR:-$root/build-bench}
reps=${BENCH_REPS:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$out"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$build" -j "$(nproc)" --target shared_bench >/dev/null &&
    "$here/peers/build.sh" "$build/bench-peers" >/dev/null || { echo "shared.sh: build failed" >&2; exit 1; }
n_of() { case $1 in queue) echo 1000000 ;; qrtt) echo 50000 ;; lock) echo 10000000 ;; lockc) echo 2000000 ;; esac; }
py_n() { case $1 in queue) echo 100000 ;; qrtt) echo 10000 ;; lock) echo 1000000 ;; lockc) echo 200000 ;; esac; }
run() { # peer workload -> value
    local n; n=$(n_of "$2")
    case $1 in
    mproc_fork) MPROC_BACKEND=fork timeout 300 "$build/bench/shared_bench" "$2" "$n" ;;
    mproc_mpi) timeout 300 mpirun --oversubscribe -np 2 "$build/bench/shared_bench" "$2" "$n" ;;
    c_floor) timeout 300 "$build/bench-peers/c_shared_floor" "$2" "$n" ;;
    c_robust) case $2 in lock | lockc) timeout 300 "$build/bench-peers/c_shared_floor" "r$2" "$n" ;; esac ;;
    python) timeout 300 python3 "$here/peers/py_shared.py" "$2" "$(py_n "$2")" ;;
    esac 2>/dev/null | grep '^RESULT' | grep ' check=ok' | grep -o ' value=[0-9.e+-]*' | cut -d= -f2
}
peers="mproc_fork mproc_mpi c_floor c_robust python"
works="queue qrtt lock lockc"
declare -A vals
for ((r = 1; r <= reps; r++)); do
    while read -r p w; do
        [ "$p" = c_robust ] && [ "$w" != lock ] && [ "$w" != lockc ] && continue
        v=$(run "$p" "$w" </dev/null) # mpirun would read the list of runs from stdin
        vals["$p $w"]="${vals["$p $w"]:-} ${v:-nan}"
    done < <(for p in $peers; do for w in $works; do echo "$p $w"; done; done | shuf)
done
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | grep -v nan | sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "nan"}'; }
{
    echo "Shared objects between a master and one Process, $reps interleaved runs each, $(nproc) cores, $(date -u +%Y-%m-%d)."
    echo "MPI: \`mpirun -np 2\`, the Process on worker rank 1 (in its executor), the objects in the master's arena."
    echo
    echo "| workload | unit | mproc fork | mproc MPI | C floor | C robust mutex | Python | mproc fork's speed / C floor | / C robust | / Python |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for w in $works; do
        case $w in queue) u="items/s" ;; qrtt) u="us per trip" ;; *) u="ns per acquire+release" ;; esac
        row="| $w | $u"
        for p in $peers; do m=$(median "${vals["$p $w"]:-}"); [ "$m" = nan ] && m=-; row="$row | $m"; done
        f=$(median "${vals["mproc_fork $w"]:-}")
        for p in c_floor c_robust python; do # speed relative to the peer, > 1 when mproc is faster
            o=$(median "${vals["$p $w"]:-}")
            row="$row | $(awk -v a="$f" -v b="$o" -v rate="$([ "$w" = queue ] && echo 1 || echo 0)" \
                'BEGIN { if (a == "nan" || b == "nan" || a <= 0 || b <= 0) print "-"; else printf "%.2f", rate ? a / b : b / a }')"
        done
        echo "$row |"
    done
    echo
    echo "Speed columns: the peer's time over mproc's (or mproc's rate over the peer's); above 1, mproc is faster."
    echo
    echo "Runs (peer workload: values):"
    for p in $peers; do for w in $works; do [ -n "${vals["$p $w"]:-}" ] && echo "- $p $w:${vals["$p $w"]}"; done; done
} >"$out/shared.md"
cat "$out/shared.md"
