#!/usr/bin/env bash
# test-all.sh - the one test command: installs what is missing, builds mproc with warnings as
# errors, and passes every test: unit, fork, mpi and slurm (ctest), then the fork and unit
# tests again under AddressSanitizer + UndefinedBehaviorSanitizer, then the wire fuzzer for a
# bounded time. Prints "N passed, N failed, N skipped" over all ctest runs (a skipped test says
# why in its output and is not counted as passed) and exits non-zero on any failure. Build trees: build-ci/, build-ci-asan/, build-ci-fuzz/ (MPROC_CI_BUILD overrides).
set -u
cd "$(dirname "$0")/.."
B=${MPROC_CI_BUILD:-build-ci}
jobs=$(nproc 2>/dev/null || echo 2)
passed=0 failed=0 skipped=0 status=0

step() { echo; echo "=== $*"; }
# run_ctest DIR ARGS...: runs ctest, adds its counts to the totals.
run_ctest() {
    local dir=$1; shift
    local log; log=$(mktemp)
    ctest --test-dir "$dir" --output-on-failure "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local line; line=$(grep -E 'tests passed, [0-9]+ tests? failed out of' "$log" | tail -1)
    if [ -n "$line" ]; then
        local f t; f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
        t=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
        # ctest counts a skipped test (exit 77: a tool or a namespace missing) as passed; it is not.
        local k; k=$(grep -c '(Skipped)' "$log")
        passed=$((passed + t - f - k)); failed=$((failed + f)); skipped=$((skipped + k))
    elif [ "$rc" -ne 0 ]; then
        failed=$((failed + 1))
    fi
    rm -f "$log"
    [ "$rc" -eq 0 ] || status=1
}
configure_build() { # DIR cmake-args...
    local dir=$1; shift
    cmake -S . -B "$dir" -DMPROC_WERROR=ON "$@" >/dev/null && cmake --build "$dir" -j "$jobs" >/dev/null ||
        { echo "build of $dir FAILED"; cmake --build "$dir" -j 1 2>&1 | tail -40; failed=$((failed + 1)); status=1; return 1; }
}

step "dependencies"
bash .ci/install-deps.sh || { echo "cannot install dependencies"; exit 1; }

step "build (warnings are errors) and all ctest labels"
configure_build "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo && run_ctest "$B" -LE fuzz

step "AddressSanitizer + UndefinedBehaviorSanitizer: unit and fork tests"
configure_build "$B-asan" -DCMAKE_BUILD_TYPE=Debug -DMPROC_SANITIZE=ON -DMPROC_WITH_MPI=OFF &&
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 run_ctest "$B-asan" -L "unit|fork"

if command -v clang >/dev/null 2>&1; then
    step "libFuzzer on the frame decoder (${MPROC_FUZZ_SECONDS:-60} s)"
    CC=clang configure_build "$B-fuzz" -DMPROC_FUZZ=ON -DMPROC_BUILD_JOBS=OFF -DMPROC_WITH_MPI=OFF &&
        run_ctest "$B-fuzz" -L fuzz
fi

echo
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
