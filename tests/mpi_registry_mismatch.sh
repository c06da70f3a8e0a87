#!/bin/bash
# mpi_registry_mismatch.sh MPIEXEC PROG_A PROG_B - ranks built with different task tables.
#
# An MPMD launch puts program A on rank 0 (the master) and program B (one task more) on the
# other ranks, then the other way round. Each run must end by itself within the time limit,
# exit non-zero, and say on stderr which rank has a different task table. A control run of A
# alone must succeed, so a failure here is the check and not a broken launcher.
set -u
mpiexec=$1 a=$2 b=$3
limit=60
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
fail=0

run() { # run DESCRIPTION EXPECT_OK ARGS...
    local what=$1 expect_ok=$2
    shift 2
    local t0=$SECONDS rc
    timeout "$limit" "$mpiexec" --oversubscribe "$@" >"$out" 2>"$err"
    rc=$?
    local took=$((SECONDS - t0))
    if [ "$expect_ok" = 1 ]; then
        if [ $rc -ne 0 ] || ! grep -q "all ranks agree" "$out"; then
            echo "FAIL $what: control run exited $rc"; cat "$out" "$err"; fail=1
        else
            echo "ok   $what (${took}s)"
        fi
        return
    fi
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        echo "FAIL $what: still running after ${limit}s (hang)"; fail=1
    elif [ $rc -eq 0 ]; then
        echo "FAIL $what: exited 0"; cat "$out"; fail=1
    elif ! grep -Eq "mproc: rank [0-9]+ has a different task table \(fingerprint 0x[0-9a-f]+ with [0-9]+ tasks; rank 0 has 0x[0-9a-f]+ with [0-9]+ tasks\): build every rank from the same program" "$err"; then
        echo "FAIL $what: exit $rc but no message naming the rank:"; cat "$err"; fail=1
    else
        echo "ok   $what: exit $rc in ${took}s: $(grep -m1 'different task table' "$err")"
    fi
}

run "same program on every rank" 1 -np 2 "$a"
run "master A, worker B" 0 -np 1 "$a" : -np 1 "$b"
run "master B, workers A" 0 -np 1 "$b" : -np 2 "$a"
exit $fail
