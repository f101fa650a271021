#!/usr/bin/env bash
# Interposition costs, each against its baseline from the same invocation:
#  1. bench_interpose: hooked read+write vs libc's own, one process.
#  2. bench_pingpong: one TCP connection ping-pong, unpatched vs LD_PRELOAD,
#     alternated three times each; the ratio of medians is printed. Twice:
#     with blocking reads, and with each reply awaited in poll() over 12 fds.
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
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
# Plain blocking reads, then replies awaited in poll() over 12 fds (an
# event-loop client). Columns: wall ns and the measuring process's CPU ns per
# round trip.
for set in 0 12; do
  plain=() patched=() plain_cpu=() patched_cpu=()
  for i in 1 2 3; do
    read -r label _ _ ns cpu < <("$BUILD/bench/bench_pingpong" 50000 "$set")
    plain+=("$ns") plain_cpu+=("$cpu")
    read -r label _ _ ns cpu < <(LD_PRELOAD="$PRELOAD" "$BUILD/bench/bench_pingpong" 50000 "$set")
    patched+=("$ns") patched_cpu+=("$cpu")
  done
  p=$(median "${plain[@]}"); q=$(median "${patched[@]}")
  pc=$(median "${plain_cpu[@]}"); qc=$(median "${patched_cpu[@]}")
  echo "$label ns/round trip: unpatched ${plain[*]} (median $p), patched ${patched[*]} (median $q); CPU ns: unpatched ${plain_cpu[*]}, patched ${patched_cpu[*]}"
  awk -v l="$label" -v p="$p" -v q="$q" -v pc="$pc" -v qc="$qc" 'BEGIN { printf "ratio %s patched / unpatched = %.3fx (CPU %.3fx)\n", l, q / p, qc / pc }'
done

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
