#!/usr/bin/env bash
# check_install.sh BUILD_DIR - installs mproc from BUILD_DIR into a temporary prefix, then
# builds and runs a consumer twice: with find_package(mproc) and with pkg-config.
set -eu
build=$1
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$here" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/consumer" >/dev/null
out=$(MPROC_BACKEND=fork "$tmp/consumer/consumer")
[ "$out" = "1 8 27" ] || { echo "find_package consumer printed: $out"; exit 1; }
echo "ok - find_package(mproc)"
pc=$(find "$tmp/prefix" -name mproc.pc | head -1)
export PKG_CONFIG_PATH=$(dirname "$pc")
cc -std=c11 "$here/consumer.c" -o "$tmp/pc_consumer" $(pkg-config --cflags mproc) $(pkg-config --libs mproc) \
    -Wl,-rpath,"$(pkg-config --variable=libdir mproc)"
out=$(MPROC_BACKEND=fork "$tmp/pc_consumer")
[ "$out" = "1 8 27" ] || { echo "pkg-config consumer printed: $out"; exit 1; }
echo "ok - pkg-config mproc"
