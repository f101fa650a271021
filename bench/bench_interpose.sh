#!/usr/bin/env bash
# Interposition costs, each against its baseline from the same invocation:
#  1. bench_interpose: hooked read+write vs libc's own, one process.
#  2. bench_pingpong: one TCP connection ping-pong, unpatched vs LD_PRELOAD,
#     alternated three times each; the ratio of medians is printed.
#  3. bench_threads: pthread mutex (uncontended, and handed between two
#     threads through a condvar) and thread create+join, unpatched vs
#     LD_PRELOAD, alternated three times; ratio of medians per line.
# Usage: bench/bench_interpose.sh [build-dir]   (a release build is best)
set -euo pipefail
BUILD=${1:-build-bench}
cd "$(dirname "$0")/.."
[ -d "$BUILD" ] || meson setup "$BUILD" --buildtype=release >/dev/null
ninja -C "$BUILD" bench/bench_interpose bench/bench_pingpong bench/bench_threads interpose/libgreen-preload.so >/dev/null
"$BUILD/bench/bench_interpose" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true --benchmark_min_time=0.2
PRELOAD="$PWD/$BUILD/interpose/libgreen-preload.so"
plain=() patched=()
for i in 1 2 3; do
  plain+=("$("$BUILD/bench/bench_pingpong" 50000 | awk '{print $4}')")
  patched+=("$(LD_PRELOAD="$PRELOAD" "$BUILD/bench/bench_pingpong" 50000 | awk '{print $4}')")
done
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
p=$(median "${plain[@]}"); q=$(median "${patched[@]}")
echo "pingpong ns/round trip: unpatched ${plain[*]} (median $p), patched ${patched[*]} (median $q)"
awk -v p="$p" -v q="$q" 'BEGIN { printf "ratio pingpong patched / unpatched = %.3fx\n", q / p }'

# 3. thread primitives
tmp=$(mktemp -d)
for i in 1 2 3; do
  "$BUILD/bench/bench_threads" > "$tmp/plain.$i"
  LD_PRELOAD="$PRELOAD" "$BUILD/bench/bench_threads" > "$tmp/patched.$i"
done
for name in mutex_uncontended mutex_handoff thread_create_join; do
  p=$(median $(awk -v n=$name '$1 == n {print $2}' "$tmp"/plain.*))
  q=$(median $(awk -v n=$name '$1 == n {print $2}' "$tmp"/patched.*))
  awk -v n=$name -v p="$p" -v q="$q" 'BEGIN { printf "%-20s unpatched %10.1f ns  patched %10.1f ns  patched/unpatched = %.3fx (unpatched/patched = %.1fx)\n", n, p, q, q / p, p / q }'
done
rm -rf "$tmp"
