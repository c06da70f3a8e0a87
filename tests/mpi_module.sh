#!/usr/bin/env bash
# mpi_module.sh MPIEXEC PRIMES MODULE - the MPI backend is a module of its own, libmproc_mpi.so,
# loaded only when MPI is chosen, from MPROC_MPI_MODULE when set (docs/mpi.md). PRIMES is
# build/jobs/primes, MODULE the built libmproc_mpi.so.
#   a) MPROC_MPI_MODULE names a copy of the module elsewhere: under mpirun -np 3 the job runs on
#      MPI from it;
#   b) it names a file that is not there: MPROC_BACKEND=mpi gets MPROC_ENOTBUILT, with the
#      loader's reason naming that file;
#   c) the same under mpirun -np 3 without MPROC_BACKEND: the reason is printed, the job runs
#      once, on rank 0's fork workers, and ends 0;
#   d) MPROC_BACKEND=mpi in a program started alone: fork workers, and a line saying why;
#   e) every MPROC_ setting set but empty (`MPROC_X= prog`) means its default: alone on fork
#      workers, under mpirun -np 3 on MPI with executors, the right answer both times.
set -u
mpiexec=$1 prog=$2 module=$3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
unset MPROC_BACKEND MPROC_MPI_MODULE
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "mpi_module: $*"
    exit 1
}
cp "$module" "$tmp/copy_of_mproc_mpi.so" || fail "cannot copy $module"

out=$(timeout 120 "$mpiexec" -np 3 --oversubscribe -x MPROC_MPI_MODULE="$tmp/copy_of_mproc_mpi.so" \
    "$prog" --limit 20000 2>&1) || fail "a) the copy: exit $?: $out"
grep -q "^backend mpi, " <<<"$out" || fail "a) the copy: not on MPI: $out"
echo "mpi_module: a) the module's copy loaded: $(grep '^backend' <<<"$out")"

out=$(MPROC_BACKEND=mpi MPROC_MPI_MODULE="$tmp/not_there.so" timeout 60 "$prog" --limit 2000 2>&1)
rc=$?
[ $rc -ne 0 ] || fail "b) a missing module: exit 0: $out"
grep -q "ENOTBUILT" <<<"$out" || fail "b) a missing module: no MPROC_ENOTBUILT: $out"
grep -q "not_there.so" <<<"$out" || fail "b) a missing module: the reason does not name the file: $out"
echo "mpi_module: b) MPROC_BACKEND=mpi with a missing module: $(grep ENOTBUILT <<<"$out" | head -1)"

out=$(timeout 120 "$mpiexec" -np 3 --oversubscribe -x MPROC_MPI_MODULE="$tmp/not_there.so" \
    "$prog" --limit 20000 2>&1) || fail "c) under mpirun with a missing module: exit $?: $out"
[ "$(grep -c '^primes below 20000: 2262$' <<<"$out")" = 1 ] || fail "c) the job did not run exactly once, right: $out"
grep -q "^backend fork, " <<<"$out" || fail "c) not on fork workers: $out"
grep -q "not_there.so" <<<"$out" || fail "c) the reason was not printed: $out"
echo "mpi_module: c) under mpirun with a missing module: ran once on fork workers, said why"

# d) MPROC_BACKEND=mpi in a program started alone (one rank): it runs on fork workers and says why.
out=$(MPROC_BACKEND=mpi timeout 60 "$prog" --limit 2000 2>&1) || fail "d) one rank: exit $?: $out"
grep -q "^backend fork, " <<<"$out" || fail "d) one rank: not on fork workers: $out"
grep -q "MPROC_BACKEND=mpi, but this program is the only rank" <<<"$out" || fail "d) one rank: not said why: $out"
echo "mpi_module: d) MPROC_BACKEND=mpi with one rank: fork workers, said why"
# e) Empty settings are unset ones (README): none refused, none taken as 0.
empty=(MPROC_BACKEND= MPROC_FORK_EACH_RANK= MPROC_MPI_MODULE= MPROC_MPI_EXECUTORS= MPROC_MPI_EXEC_RING=
    MPROC_MPI_EXEC_MAILBOX= MPROC_MPI_LOST_TIMEOUT= MPROC_MPI_START_TIMEOUT= MPROC_SHARED_BYTES=
    MPROC_SHARED_BROKER= MPROC_SHARED_BROKER_ADDR= MPROC_PROGRESS= MPROC_FORK_RING=)
out=$(env "${empty[@]}" timeout 60 "$prog" --limit 20000 2>&1) || fail "e) empty settings alone: exit $?: $out"
grep -q "^backend fork, " <<<"$out" || fail "e) empty settings alone: not on fork workers: $out"
grep -q '^primes below 20000: 2262$' <<<"$out" || fail "e) empty settings alone: wrong answer: $out"
xs=()
for e in "${empty[@]}"; do xs+=(-x "$e"); done
out=$(env "${empty[@]}" timeout 120 "$mpiexec" -np 3 --oversubscribe "${xs[@]}" "$prog" --limit 20000 2>&1) ||
    fail "e) empty settings under mpirun: exit $?: $out"
grep -q "^backend mpi, " <<<"$out" || fail "e) empty settings under mpirun: not on MPI: $out"
[ "$(grep -c '^primes below 20000: 2262$' <<<"$out")" = 1 ] || fail "e) empty settings under mpirun: not run once, right: $out"
echo "mpi_module: e) every MPROC_ setting empty: defaults, alone and under mpirun"
echo "mpi_module: ok"
