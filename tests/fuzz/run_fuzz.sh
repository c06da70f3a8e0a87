#!/usr/bin/env bash
# run_fuzz.sh [SECONDS] - builds fuzz_wire with clang (libFuzzer + ASan + UBSan) into a temp dir,
# no CMake needed, and fuzzes for SECONDS (default 60) from a temp copy of tests/fuzz/corpus, so
# the source tree is never written. Exits non-zero on a crash; the crashing input and the temp
# dir are then kept and their paths printed. CC overrides the compiler (must be clang).
set -euo pipefail

secs="${1:-60}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cc="${CC:-clang}"
work="$(mktemp -d "${TMPDIR:-/tmp}/mproc_fuzz.XXXXXX")"

"$cc" -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I"$root/include" -I"$root/src" \
    "$root/src/wire/wire.c" "$root/src/common/errors.c" "$here/fuzz_wire.c" -o "$work/fuzz_wire"

cp -R "$here/corpus" "$work/corpus"
mkdir -p "$work/artifacts"

rc=0
(cd "$work" && ./fuzz_wire -max_total_time="$secs" -print_final_stats=1 \
    -dict="$here/wire.dict" -artifact_prefix="$work/artifacts/" corpus) || rc=$?

if [ "$rc" -ne 0 ]; then
    echo "run_fuzz.sh: fuzz_wire failed (exit $rc); inputs kept in $work/artifacts:" >&2
    ls -l "$work/artifacts" >&2 || true
    exit "$rc"
fi
rm -rf "$work"
echo "run_fuzz.sh: no crash in ${secs}s"
