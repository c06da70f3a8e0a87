#!/usr/bin/env bash
# run.sh - the whole mproc benchmark in one command: build, interleaved repeated runs of mproc
# and every peer, medians, ratios, target checks and the granularity plot.
#
#   bench/run.sh [--reps N] [--quick] [--timeout S]
#
#   --reps N     repetitions (default 5). Each repetition runs every workload once for every
#                peer, the peers of one workload in a freshly shuffled order, so machine noise
#                hits all peers alike.
#   --quick      smoke test: 1 repetition (unless --reps is given) and reduced sizes
#                (apply 20000, map 1000000, spawn 200, bytes 4, gran ~0.1 s of serial work,
#                imapmem 1000000). A few minutes.
#   --timeout S  per-run limit in seconds (default 180); a stuck peer is killed and the run
#                is recorded as a '# FAIL' line in raw.txt.
#
# Environment:
#   MPROC_BUILD_DIR  use this existing mproc build directory (must contain bench/mproc_bench);
#                    it is still brought up to date with `cmake --build`. Default: build-bench/
#                    (configured here with CMAKE_BUILD_TYPE=Release).
#   BENCH_OUT        results directory (default bench/results)
#   PYTHON           interpreter for the Python peers and the report (default /usr/bin/python3)
#
# Outputs (in bench/results/): raw.txt (every RESULT line, fresh per invocation, header with
# date, nproc, load, Open MPI and Python versions), run.log (stderr of every run), results.md
# (tables and the Targets section), gran_c1.dat / gran_cauto.dat and granularity.png.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root" || exit 2

reps="" quick=0 tmo=180
while [ $# -gt 0 ]; do
    case $1 in
    --reps) reps=${2:?--reps needs a number}; shift 2 ;;
    --reps=*) reps=${1#*=}; shift ;;
    --quick) quick=1; shift ;;
    --timeout) tmo=${2:?--timeout needs seconds}; shift 2 ;;
    --timeout=*) tmo=${1#*=}; shift ;;
    -h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
[ -n "$reps" ] || { [ $quick = 1 ] && reps=1 || reps=5; }
case $reps in '' | *[!0-9]* | 0) echo "run.sh: --reps must be a positive number" >&2; exit 2 ;; esac

PY=${PYTHON:-/usr/bin/python3}
out=${BENCH_OUT:-$here/results}
build=${MPROC_BUILD_DIR:-$root/build-bench}
peers_dir=$build/bench-peers
raw=$out/raw.txt
log=$out/run.log
mkdir -p "$out"

say() { echo "[run.sh $(date +%H:%M:%S)] $*" >&2; }
load1() { cut -d' ' -f1-3 /proc/loadavg; }

# ---- 1. build ---------------------------------------------------------------------------
say "building mproc (Release) in $build"
if [ -z "${MPROC_BUILD_DIR:-}" ] || [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >"$out/build.log" 2>&1 ||
        { cat "$out/build.log" >&2; say "cmake configure failed"; exit 1; }
fi
grep -q '^CMAKE_BUILD_TYPE:STRING=Release' "$build/CMakeCache.txt" ||
    say "WARNING: $build is not a Release build"
cmake --build "$build" -j "$(nproc)" --target mproc_bench >>"$out/build.log" 2>&1 ||
    { tail -40 "$out/build.log" >&2; say "building mproc_bench failed"; exit 1; }
"$here/peers/build.sh" "$peers_dir" >>"$out/build.log" 2>&1 ||
    { tail -40 "$out/build.log" >&2; say "building the C peers failed"; exit 1; }
MB=$build/bench/mproc_bench
[ -x "$MB" ] || { say "no $MB"; exit 1; }
MPI=(mpirun --oversubscribe -np 3)
[ "$(id -u)" = 0 ] && MPI=(mpirun --allow-run-as-root --oversubscribe -np 3)
have_mpi=1
command -v mpirun >/dev/null && [ -x "$peers_dir/c_mpi_floor" ] || { have_mpi=0; say "no MPI: MPI peers skipped"; }
have_mpi4py=0
[ $have_mpi = 1 ] && "$PY" -c 'import mpi4py.futures' 2>/dev/null && have_mpi4py=1

# ---- workloads and peers ----------------------------------------------------------------
if [ $quick = 1 ]; then
    A_rtt=2000 A_apply=20000 A_map=1000000 A_spawn=200 A_bytes=4 A_imap=1000000
else
    A_rtt=5000 A_apply="" A_map="" A_spawn="" A_bytes="" A_imap=""
fi
workloads=("rtt $A_rtt" "apply $A_apply" "map $A_map" "spawn $A_spawn" "bytes $A_bytes")
for T in 1000 100 10 1; do
    for c in 1 auto; do
        if [ $quick = 1 ]; then
            n=$((100000 / T)); [ $c = 1 ] && [ $n -gt 10000 ] && n=10000
            workloads+=("gran $T $c $n")
        else
            workloads+=("gran $T $c")
        fi
    done
done
# The machine's own ceiling: two processes spinning the same tasks without any messages.
for T in 1000 100; do
    if [ $quick = 1 ]; then workloads+=("gran $T static $((100000 / T))"); else workloads+=("gran $T static"); fi
done
workloads+=("imapmem $A_imap")

peers=(mproc_fork c_fork_floor c_fork_spin_floor py_pool py_futures)
# c_fork_spin_floor (the pipe ping-pong whose two ends look for the next message for up to 50 us
# before they sleep, as mproc's fork backend does) runs rtt only: the blocking ping-pong's
# wake-ups are bimodal on a VM (5-36 us), and the fork rtt target takes the better of the two.
# mproc_mpi_inrank (tasks inside the ranks, MPROC_MPI_EXECUTORS=0) and c_relay_floor (a
# hand-written relay to a child of each worker rank) run rtt and map only: the floor of each MPI
# mode on one call at a time and on big maps, in the same minutes.
[ $have_mpi = 1 ] && peers+=(mproc_mpi c_mpi_floor mproc_mpi_inrank c_relay_floor)
[ $have_mpi4py = 1 ] && peers+=(py_mpi4py)

# cmd_for PEER -> the command prefix in array CMD
cmd_for() {
    case $1 in
    mproc_fork) CMD=(env MPROC_BACKEND=fork "$MB") ;;
    mproc_mpi) CMD=("${MPI[@]}" "$MB") ;;
    mproc_mpi_inrank) CMD=("${MPI[@]}" -x MPROC_MPI_EXECUTORS=0 "$MB") ;;
    c_relay_floor) CMD=("${MPI[@]}" -x FLOOR_RELAY=1 "$peers_dir/c_mpi_floor") ;;
    c_fork_floor) CMD=("$peers_dir/c_fork_floor") ;;
    c_fork_spin_floor) CMD=(env FLOOR_SPIN=1 "$peers_dir/c_fork_floor") ;;
    c_mpi_floor) CMD=("${MPI[@]}" "$peers_dir/c_mpi_floor") ;;
    py_pool) CMD=("$PY" "$here/peers/py_pool.py") ;;
    py_futures) CMD=("$PY" "$here/peers/py_futures.py") ;;
    py_mpi4py) CMD=("${MPI[@]}" "$PY" -m mpi4py.futures "$here/peers/py_mpi4py.py") ;;
    esac
}

# ---- 2. header + interleaved runs -------------------------------------------------------
ompi=$(mpirun --version 2>/dev/null | head -1)
pyv=$("$PY" --version 2>&1)
start=$(date +%s)
{
    echo "# mproc benchmark raw results (bench/run.sh)"
    echo "# date: $(date -Is)"
    echo "# host: $(uname -srm)  nproc: $(nproc)  loadavg: $(cat /proc/loadavg)"
    echo "# mpi: ${ompi:-none}"
    echo "# python: $PY $pyv"
    echo "# git: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet 2>/dev/null || echo ' (dirty tree)')"
    echo "# reps: $reps  quick: $quick  timeout: ${tmo}s  build: $build"
    echo "# peers: ${peers[*]}"
} >"$raw"
: >"$log"

total=$((reps * ${#workloads[@]})) step=0
for r in $(seq 1 "$reps"); do
    echo "# rep $r start $(date -Is) loadavg: $(load1)" >>"$raw"
    say "rep $r/$reps (load $(load1))"
    for wl in "${workloads[@]}"; do
        step=$((step + 1))
        read -r -a args <<<"$wl"
        w=${args[0]}
        order=$(printf '%s\n' "${peers[@]}" | shuf)
        for p in $order; do
            # imapmem exists only in mproc_bench, gran static only in c_fork_floor.
            [ "$w" = imapmem ] && case $p in mproc_*) ;; *) continue ;; esac
            [ "${args[2]:-}" = static ] && [ "$p" != c_fork_floor ] && continue
            case $p in mproc_mpi_inrank | c_relay_floor) case $w in rtt | map) ;; *) continue ;; esac ;; esac
            [ "$p" = c_fork_spin_floor ] && [ "$w" != rtt ] && continue
            cmd_for "$p"
            t0=$(date +%s.%N)
            res=$(timeout -k 10 "$tmo" "${CMD[@]}" "${args[@]}" </dev/null 2>"$out/.stderr.tmp")
            rc=$?
            dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
            { echo "== rep=$r peer=$p args=${args[*]} rc=$rc wall=${dt}s"; cat "$out/.stderr.tmp"; } >>"$log"
            line=$(printf '%s\n' "$res" | grep '^RESULT ' | head -1)
            if [ -n "$line" ]; then
                # launched= is the peer this script started; report.py flags a mismatch
                # (e.g. mproc_bench falling back to fork workers when launched as mproc_mpi)
                echo "$line rep=$r wall=$dt launched=$p" >>"$raw"
            else
                echo "# FAIL rep=$r peer=$p args=${args[*]} rc=$rc wall=$dt$([ $rc = 124 ] && echo ' (timeout)')" >>"$raw"
                say "FAIL $p ${args[*]} rc=$rc"
            fi
        done
        [ $((step % 4)) = 0 ] && say "  $step/$total workload runs done, $(($(date +%s) - start)) s"
    done
    echo "# rep $r end $(date -Is) loadavg: $(load1)" >>"$raw"
done
rm -f "$out/.stderr.tmp"
elapsed=$(($(date +%s) - start))
echo "# done $(date -Is) elapsed: ${elapsed}s loadavg: $(cat /proc/loadavg)" >>"$raw"
say "runs done in ${elapsed}s"

# ---- 3. statistics + results.md, 4. plot --------------------------------------------------
"$PY" "$here/report.py" "$raw" "$out" || { say "report.py failed"; exit 1; }
if command -v gnuplot >/dev/null; then
    gnuplot -e "datadir='$out'" "$here/plot.gp" 2>>"$log" && say "wrote $out/granularity.png" ||
        say "gnuplot failed (see $log)"
else
    say "gnuplot not found: no plot"
fi
say "wrote $out/results.md"
grep -q '^# FAIL' "$raw" && say "some runs failed: grep FAIL $raw"
exit 0
