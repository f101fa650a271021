#!/usr/bin/env bash
# Interposition costs, each against its baseline from the same invocation:
#  1. bench_interpose: hooked read+write vs libc's own, one process.
#  2. bench_pingpong: one TCP connection ping-pong, unpatched vs LD_PRELOAD,
#     alternated three times each; the ratio of medians is printed.
# Usage: tools/bench_interpose.sh [build-dir]   (a release build is best)
set -euo pipefail
BUILD=${1:-build-bench}
cd "$(dirname "$0")/.."
[ -d "$BUILD" ] || meson setup "$BUILD" --buildtype=release >/dev/null
ninja -C "$BUILD" tools/bench_interpose tools/bench_pingpong interpose/libgreen-preload.so >/dev/null
"$BUILD/tools/bench_interpose" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true --benchmark_min_time=0.2
PRELOAD="$PWD/$BUILD/interpose/libgreen-preload.so"
plain=() patched=()
for i in 1 2 3; do
  plain+=("$("$BUILD/tools/bench_pingpong" 50000 | awk '{print $4}')")
  patched+=("$(LD_PRELOAD="$PRELOAD" "$BUILD/tools/bench_pingpong" 50000 | awk '{print $4}')")
done
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
p=$(median "${plain[@]}"); q=$(median "${patched[@]}")
echo "pingpong ns/round trip: unpatched ${plain[*]} (median $p), patched ${patched[*]} (median $q)"
awk -v p="$p" -v q="$q" 'BEGIN { printf "ratio pingpong patched / unpatched = %.3fx\n", q / p }'
