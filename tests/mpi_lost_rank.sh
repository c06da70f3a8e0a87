#!/bin/bash
# mpi_lost_rank.sh MPIEXEC PROGRAM [MPIRUN OPTIONS...] - a worker rank is SIGKILLed mid-map under
# `mpirun --enable-recovery` (Open MPI keeps the job alive): mpi_lost_rank must print its ok
# line, the job must end 0 within the limit (never hang), and stderr must carry mproc's warning
# naming the lost rank and its host. MPROC_TEST_NP (default 4) ranks; MPROC_TEST_LOSSES (default
# 1) ranks must be named lost (mpi_lost_ranks loses all four of -np 5).
set -u
mpiexec=$1 prog=$2 limit=120 np=${MPROC_TEST_NP:-4} losses=${MPROC_TEST_LOSSES:-1}
shift 2
out=$(mktemp) err=$(mktemp) marker=/tmp/mproc-lost-rank-$$-$RANDOM
trap 'rm -f "$out" "$err" "$marker" "$marker".*' EXIT
t0=$SECONDS
timeout "$limit" "$mpiexec" --oversubscribe --enable-recovery --mca orte_abort_on_non_zero_status 0 \
    -np "$np" -x MPROC_MPI_LOST_TIMEOUT=3 -x MPROC_LOST_RANK_MARKER="$marker" -x MPROC_TEST_STDERR="$err" "$@" "$prog" >"$out" 2>"$err"
rc=$?
took=$((SECONDS - t0))
fail() { echo "FAIL: $* (exit $rc after ${took}s)"; echo "--- stdout"; cat "$out"; echo "--- stderr"; cat "$err"; exit 1; }
[ $rc -eq 124 ] || [ $rc -eq 137 ] && fail "still running after ${limit}s"
[ $rc -eq 0 ] || fail "the job did not end 0"
grep -q '^ok: ' "$out" || fail "no ok line"
named=$(grep -Eo "mproc: warning: worker rank [0-9]+ \(host [^)]+\) is lost" "$err" | sort -u | wc -l)
[ "$named" -eq "$losses" ] || fail "$named warnings naming a lost rank, want $losses"
cat "$out"
echo "ok in ${took}s: $(grep -Em1 'is lost' "$err")"
