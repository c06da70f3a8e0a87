#!/bin/bash
# mpi_rank_crash.sh MPIEXEC PROGRAM [REPEAT] - a worker rank that runs its tasks inside itself
# (MPROC_MPI_EXECUTORS=0) segfaults inside a map.
#
# Open MPI ends the whole job when a rank dies; mproc promises the job ends promptly (here:
# within 10 s, start-up included), exits non-zero, and that stderr names the rank, its pid,
# the signal and the task. Repeated REPEAT times (a crash must end the job every time, not
# most times); prints the slowest run.
set -u
mpiexec=$1 prog=$2 repeat=${3:-1}
limit=10
err=$(mktemp)
trap 'rm -f "$err"' EXIT
pattern="mproc: worker rank [12] \(pid [0-9]+\) died of signal 11 \(SIGSEGV\) while running task 'crash_on_37' \(request [0-9]+\)"
worst=0 fail=0
for ((i = 1; i <= repeat; i++)); do
    t0=$(date +%s%N)
    timeout 60 "$mpiexec" --oversubscribe -np 3 -x MPROC_MPI_EXECUTORS=0 "$prog" >/dev/null 2>"$err"
    rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    [ $ms -gt $worst ] && worst=$ms
    if [ $rc -eq 0 ] || [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        echo "FAIL run $i: exit $rc after ${ms} ms"; cat "$err"; fail=1; break
    fi
    if [ $ms -gt $((limit * 1000)) ]; then
        echo "FAIL run $i: took ${ms} ms (limit ${limit} s)"; fail=1; break
    fi
    if ! grep -Eq "$pattern" "$err"; then
        echo "FAIL run $i: no message naming the rank and the task:"; cat "$err"; fail=1; break
    fi
done
[ $fail -eq 0 ] && echo "ok: $repeat/$repeat runs ended non-zero with the rank and task named; slowest ${worst} ms"
exit $fail
