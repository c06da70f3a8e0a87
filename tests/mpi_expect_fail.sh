#!/bin/bash
# mpi_expect_fail.sh SECONDS PATTERN COMMAND... - the command must fail by itself within
# SECONDS (a hang is the worst failure), exit non-zero, and print a line matching the extended
# regular expression PATTERN on stderr.
set -u
limit=$1 pattern=$2
shift 2
err=$(mktemp)
trap 'rm -f "$err"' EXIT
t0=$SECONDS
timeout "$limit" "$@" >/dev/null 2>"$err"
rc=$?
took=$((SECONDS - t0))
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then echo "FAIL: still running after ${limit}s"; cat "$err"; exit 1; fi
if [ $rc -eq 0 ]; then echo "FAIL: exited 0"; cat "$err"; exit 1; fi
if ! grep -Eq "$pattern" "$err"; then echo "FAIL: exit $rc without /$pattern/ on stderr:"; cat "$err"; exit 1; fi
echo "ok: exit $rc in ${took}s: $(grep -Em1 "$pattern" "$err")"
