#!/usr/bin/env bash
# isolation.sh - what running tasks in executor processes costs under MPI, against running them
# inside the ranks (MPROC_MPI_EXECUTORS=0), in the same minutes: mproc_bench rtt (blocking apply,
# one call at a time), apply (apply_async throughput), map (10M items, 10 times on one pool: a
# single 10M map lasts 30-80 ms here and its figure spread 2x run to run) and gran 100 us chunksize 1
# (efficiency of 100 us tasks), under mpirun -np 3 (a master and two worker ranks), the two modes
# interleaved, REPS times (default 3; BENCH_REPS overrides). Beside them, the floor for what
# isolation costs a hand-written program: c_relay_floor (peers/c_mpi_floor.c with FLOOR_RELAY=1:
# each worker rank relays to a child forked before MPI_Init, through shared memory) on rtt, map
# and gran; its apply sends one task per message where mproc batches, so it is left out there.
# "map on one core" is the same map with every process of the job on CPU 0 (taskset, mpirun
# --bind-to none): its items/s is one over the CPU time an item costs the whole job, so it
# compares what isolation costs in work, apart from how the scheduler shares too few cores
# among more busy processes (with executors, 5 on 2 cores; in the ranks, 3).
# Writes bench/results/isolation.md (BENCH_OUT overrides) and prints it.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
out=${BENCH_OUT:-$root/bench/results}
build=${MPROC_BUILD_DIR:-$root/build-bench}
reps=${BENCH_REPS:-3}
mkdir -p "$out"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$build" -j "$(nproc)" --target mproc_bench >/dev/null ||
    { echo "isolation.sh: building mproc_bench failed" >&2; exit 1; }
sh "$here/peers/build.sh" "$build/bench-peers" >/dev/null || { echo "isolation.sh: building the C peers failed" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
workloads=("rtt 20000" "apply 100000" "map 10000000 10" "pin:map 10000000 10" "gran 100 1 20000")
declare -A vals
# value W MODE: one run's figure (gran: efficiency = serial / (2 workers x wall)); MODE 1 / 0:
# mproc with executors / in the ranks, relay: the hand-written relay.
value() {
    local line w=$1 pin=() bind=()
    if [[ $w == pin:* ]]; then
        w=${w#pin:}
        pin=(taskset -c 0) bind=(--bind-to none)
    fi
    if [[ $2 == relay ]]; then
        [[ $w == apply* ]] && { echo "-"; return; }
        line=$(timeout 300 "${pin[@]}" mpirun --oversubscribe "${bind[@]}" -np 3 -x FLOOR_RELAY=1 "$build/bench-peers/c_mpi_floor" $w 2>/dev/null | grep '^RESULT')
    else
        line=$(timeout 300 "${pin[@]}" mpirun --oversubscribe "${bind[@]}" -np 3 -x MPROC_MPI_EXECUTORS="$2" "$build/bench/mproc_bench" $w 2>/dev/null | grep '^RESULT')
    fi
    local v s
    v=$(grep -o ' value=[0-9.e+-]*' <<<"$line" | cut -d= -f2)
    if [[ $1 == gran* ]]; then
        s=$(grep -o ' serial=[0-9.e+-]*' <<<"$line" | cut -d= -f2)
        awk -v s="${s:-0}" -v v="${v:-0}" 'BEGIN { if (v > 0) printf "%.3f", s / (2 * v); else print "nan" }'
    else
        echo "${v:-nan}"
    fi
}
for ((r = 1; r <= reps; r++)); do
    for w in "${workloads[@]}"; do
        for mode in 1 0 relay; do vals["$w|$mode"]="${vals["$w|$mode"]:-} $(value "$w" $mode)"; done
    done
done
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | grep -v '^-$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
{
    echo "Executors against in-rank execution, \`mpirun -np 3\`, $reps interleaved runs each, $(nproc) cores, $(date -u +%Y-%m-%d)."
    echo
    echo "| workload | unit | executors (median) | in the rank (median) | executors / in the rank | hand-written relay (median) | executors / relay | runs (executors; in the rank; relay) |"
    echo "|---|---|---:|---:|---:|---:|---:|---|"
    for w in "${workloads[@]}"; do
        e=$(median "${vals["$w|1"]}") i=$(median "${vals["$w|0"]}") f=$(median "${vals["$w|relay"]}")
        case $w in rtt*) unit="us per call (lower is better)" ;; apply*) unit="tasks/s" ;; map*) unit="items/s" ;; pin:map*) unit="items/s, every process on one core" ;; gran*) unit="efficiency" ;; esac
        ratio=$(awk -v e="$e" -v i="$i" 'BEGIN { if (i > 0) printf "%.2f", e / i; else print "nan" }')
        rr=$(awk -v e="$e" -v f="${f:--}" 'BEGIN { if (f > 0) printf "%.2f", e / f; else print "-" }')
        name=${w%% *}
        [[ $name == pin:map ]] && name="map on one core"
        echo "| $name | $unit | $e | $i | $ratio | ${f:--} | $rr | ${vals["$w|1"]}; ${vals["$w|0"]}; ${vals["$w|relay"]} |"
    done
    echo
    echo "Ratios are mproc's figure over the other's: for rtt (time per call) lower is better, for the rest higher." 
} >"$out/isolation.md"
cat "$out/isolation.md"
