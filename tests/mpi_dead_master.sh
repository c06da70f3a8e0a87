#!/bin/bash
# mpi_dead_master.sh MPIEXEC PROGRAM - the master is SIGKILLed under `mpirun --enable-recovery`
# (mpi_dead_master.c): mpirun must end within the limit, each worker rank must say the master is
# gone, and none of the ranks, fork servers and executors the program printed may be left.
set -u
mpiexec=$1 prog=$2 limit=60
out=$(mktemp) err=$(mktemp)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    rm -f "$out" "$err"
}
trap cleanup EXIT
t0=$SECONDS
timeout "$limit" "$mpiexec" --oversubscribe --enable-recovery --mca orte_abort_on_non_zero_status 0 \
    -np 3 "$prog" >"$out" 2>"$err"
rc=$?
took=$((SECONDS - t0))
read -ra pids <<<"$(awk '/^pids /{print $2, $3, $4}' "$out" | tr '\n' ' ')"
fail() { echo "FAIL: $* (exit $rc after ${took}s)"; echo "--- stdout"; cat "$out"; echo "--- stderr"; cat "$err"; exit 1; }
[ $rc -eq 124 ] || [ $rc -eq 137 ] && fail "mpirun still running after ${limit}s"
grep -q '^master [0-9]* dies' "$out" || fail "the master did not get to its end"
[ ${#pids[@]} -eq 6 ] || fail "want the pids of 2 executors, their fork servers and ranks, got ${#pids[@]}"
said=$(grep -Ec 'mproc: worker rank [12]: the master \(rank 0, pid [0-9]+\) is gone; this rank ends' "$err")
[ "$said" -eq 2 ] || fail "$said worker ranks said the master is gone, want 2"
sleep 1 # the executors' parent-death signal is delivered as their rank ends
left=()
for p in "${pids[@]}"; do
    [ -d /proc/$p ] && ! grep -q '^State:.*Z' /proc/$p/status 2>/dev/null && left+=("$p")
done
[ ${#left[@]} -eq 0 ] && pids=() || fail "left running: ${left[*]}"
echo "ok in ${took}s: both worker ranks ended, nothing left; $(grep -m1 'is gone' "$err")"
