#!/bin/sh
# build.sh - compile the two hand-written C benchmark peers (the "floors").
#
#   bench/peers/build.sh [OUTDIR]      (default OUTDIR: build/bench-peers)
#
# Produces OUTDIR/c_fork_floor and OUTDIR/c_shared_floor (gcc -O2) and, when mpicc is on PATH,
# OUTDIR/c_mpi_floor (mpicc -O2).  CC / MPICC / CFLAGS override the defaults.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-build/bench-peers}
mkdir -p "$out"
CC=${CC:-gcc}
MPICC=${MPICC:-mpicc}
CFLAGS=${CFLAGS:--O2 -std=c11 -Wall -Wextra}

$CC $CFLAGS -o "$out/c_fork_floor" "$here/c_fork_floor.c" -lm
echo "built $out/c_fork_floor"
$CC $CFLAGS -o "$out/c_shared_floor" "$here/c_shared_floor.c" -lpthread
echo "built $out/c_shared_floor"
if command -v "$MPICC" >/dev/null 2>&1; then
    $MPICC $CFLAGS -o "$out/c_mpi_floor" "$here/c_mpi_floor.c" -lm
    echo "built $out/c_mpi_floor"
else
    echo "mpicc not found: skipped c_mpi_floor" >&2
fi
