#!/bin/sh
# Builds the runtime benchmarks with optimisation and runs them; prints each
# benchmark's median over the repetitions and the ratios against the
# baselines measured in the same run (see docs/benchmarks.md).
#
# Usage: bench/run_benchmarks.sh [extra Google Benchmark flags]
#   BUILD_DIR   build directory (default build-bench; created as --buildtype=release)
#   JOBS        ninja -j (default 2)
# Takes about a minute: 7 benchmarks x 5 repetitions x ~1 s, plus the RSS run.
set -eu

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-bench}
JOBS=${JOBS:-2}

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    meson setup "$BUILD_DIR" --buildtype=release -Dbenchmarks=true
fi
ninja -C "$BUILD_DIR" -j "$JOBS" bench/bench_runtime bench/bench_rss

echo "# machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
echo "# $BUILD_DIR/bench/bench_runtime --benchmark_repetitions=5 --benchmark_min_time=1 --benchmark_display_aggregates_only=true $*"
"$BUILD_DIR/bench/bench_runtime" --benchmark_repetitions=5 --benchmark_min_time=1 \
    --benchmark_display_aggregates_only=true "$@"
echo
echo "# $BUILD_DIR/bench/bench_rss 100000"
"$BUILD_DIR/bench/bench_rss" 100000
