#!/usr/bin/env bash
# Package a release build of the scaling benchmark so that it runs on another
# x86-64 Linux machine that has no compiler and another distribution (a
# machine with more CPUs, lent for a run): the binaries get Debian's own
# loader and libraries, found at a fixed path, so the shim sees the glibc it
# was built against (its per-thread TLS switching refuses any other).
#
# Usage: bench/carry_build.sh [BUNDLE]        (default .devbundle; needs patchelf)
# On the other machine, from a copy of the repository with BUNDLE in it:
#   rm -rf /tmp/gl && cp -r BUNDLE/sys /tmp/gl
#   GREEN_BUILD_DIR=BUNDLE/build SCALING_PREBUILT=1 bash bench/scaling.sh
# (with SCALING_HUBS, SCALING_CLIENT_CPUS, SCALING_WARMUP, SCALING_SECTION as
# that machine's CPU count calls for; docs/benchmarks.md names the ones used).
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=${1:-.devbundle}
BUILD=${GREEN_BUILD_DIR:-build-scaling}
LIBS=/tmp/gl  # where the other machine gets BUNDLE/sys
command -v patchelf >/dev/null || { echo "carry_build: patchelf is needed (apt-get install patchelf)" >&2; exit 1; }
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release -Dtests=false >/dev/null
ninja -C "$BUILD" examples/http_threads tools/greenbench tools/greenrun interpose/libgreen-preload.so \
  bench/bench_scaling >/dev/null
rm -rf "$BUNDLE"
mkdir -p "$BUNDLE"/build/{examples,tools,interpose,bench} "$BUNDLE/sys"
cp "$BUILD/examples/http_threads" "$BUNDLE/build/examples/"
cp "$BUILD/tools/greenbench" "$BUILD/tools/greenrun" "$BUNDLE/build/tools/"
cp "$BUILD/interpose/libgreen-preload.so" "$BUNDLE/build/interpose/"
cp "$BUILD/bench/bench_scaling" "$BUNDLE/build/bench/"
# Every library the binaries load, and the loader, as this machine has them.
for f in "$BUNDLE"/build/*/*; do
  ldd "$f" | awk '$3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}'
done | grep -v libgreen-preload | sort -u | while read -r lib; do cp -L "$lib" "$BUNDLE/sys/"; done
for exe in "$BUNDLE"/build/{examples/http_threads,tools/greenbench,tools/greenrun,bench/bench_scaling}; do
  patchelf --set-interpreter "$LIBS/ld-linux-x86-64.so.2" "$exe"
  # DT_RPATH, not RUNPATH: it also serves the libraries' own dependencies.
  patchelf --force-rpath --set-rpath "$LIBS" "$exe"
done
patchelf --force-rpath --set-rpath "$LIBS:\$ORIGIN/../interpose" "$BUNDLE/build/bench/bench_scaling"
patchelf --force-rpath --set-rpath "$LIBS" "$BUNDLE/build/interpose/libgreen-preload.so"
echo "carry_build: $BUNDLE ($(du -sh "$BUNDLE" | cut -f1)); on the other machine: rm -rf $LIBS && cp -r $BUNDLE/sys $LIBS"
