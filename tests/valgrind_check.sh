#!/usr/bin/env bash
# valgrind_check.sh PROGRAM [ARGS] - runs a test under valgrind memcheck and fails on any
# invalid read/write or use of uninitialised memory (in the program or its forked workers), or
# on memory the program itself definitely leaked. Forked children leave with _exit() still
# holding the heap they inherited from the master, which is not theirs to free, so leaks are
# judged on the top process only (--child-silent-after-fork keeps the children quiet).
set -u
command -v valgrind >/dev/null || { echo "SKIPPED: valgrind is not installed"; exit 77; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
valgrind --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=none \
    --error-exitcode=99 --child-silent-after-fork=yes --log-file="$log" "$@"
rc=$?
grep -E "ERROR SUMMARY|definitely lost" "$log"
if [ "$rc" -eq 99 ]; then
    echo "valgrind found memory errors:"; cat "$log"; exit 1
fi
if grep -qE "definitely lost: [1-9]" "$log"; then
    echo "valgrind found leaks:"; cat "$log"; exit 1
fi
exit "$rc"
