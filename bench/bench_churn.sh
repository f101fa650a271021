#!/bin/sh
# Short connections to examples/echo_threads under the shim, at full count:
# the server's RSS and mapping count after the first tenth (at most 10,000) and at the end,
# with 1 and 2 hubs, and unpatched as the baseline (docs/benchmarks.md,
# "Stacks"). It runs the suite's test (tests/fault/test_short_connections.cpp)
# with GREEN_CHURN_CONNECTIONS raised; the test asserts the 1.2x bound, this
# prints the figures.
#
# Usage: bench/bench_churn.sh [connections]   (default 200000)
#   BUILD_DIR    build directory (default build)
#   GREEN_PRELOAD  the shim to measure (default $BUILD_DIR/interpose/libgreen-preload.so)
set -eu
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
N=${1:-200000}
ninja -C "$BUILD_DIR" tests/fault/test_fault_short_connections examples/echo_threads interpose/libgreen-preload.so >/dev/null
export GREEN_EXAMPLES_DIR="$PWD/$BUILD_DIR/examples"
export GREEN_PRELOAD="${GREEN_PRELOAD:-$PWD/$BUILD_DIR/interpose/libgreen-preload.so}"
echo "# GREEN_CHURN_CONNECTIONS=$N $BUILD_DIR/tests/fault/test_fault_short_connections (shim: $GREEN_PRELOAD)"
GREEN_CHURN_CONNECTIONS=$N "$BUILD_DIR/tests/fault/test_fault_short_connections" | grep -E 'short connections|OK|FAILED'
