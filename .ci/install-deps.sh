#!/usr/bin/env bash
# install-deps.sh - installs what mproc needs to build and test on Debian/Ubuntu, as root,
# only where something is missing (a second run costs a few dpkg queries).
#   build:  cmake, a C compiler, Open MPI (openmpi-bin, libopenmpi-dev), cmocka, pkg-config
#   checks: clang + libFuzzer runtime (fuzzing), valgrind, Slurm + munge (the slurm tests),
#           iproute2 (the cluster tests: hosts simulated with network namespaces), tmux (the
#           progress bar test reads a real terminal)
# Usage: bash .ci/install-deps.sh [--minimal | --bench]
#   --minimal: only what building and running the jobs needs (cmake, gcc, Open MPI)
#   --bench:   everything, plus Python's mpi4py and gnuplot for bench/
set -euo pipefail
pkgs=(cmake gcc make pkg-config openmpi-bin libopenmpi-dev)
[ "${1:-}" = "--minimal" ] || pkgs+=(libcmocka-dev clang libclang-rt-dev valgrind slurm-wlm munge procps iproute2 tmux)
[ "${1:-}" = "--bench" ] && pkgs+=(python3 python3-mpi4py gnuplot-nox hyperfine)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: everything is installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing ${missing[*]}; run as root: apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
