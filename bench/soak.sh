#!/usr/bin/env bash
# The fault suite's soak, for minutes instead of CI's seconds: the
# 2,000-connection checksummed echo and the short-connection churn each run
# for SECONDS against echo_threads unpatched (the baseline), and under the
# shim on 1 and 2 hubs, with every check of the CI tests still applied
# (every byte compared, the server's totals exact, no fd/mapping/RSS growth).
# Then the other fault tests (slowloris, resets, EMFILE) once.
#
#   bench/soak.sh [SECONDS] [BUILD_DIR]     (default: 60 s, build)
#
# Wall time: about 6 x SECONDS plus a minute. Prints each run's figures and
# a Markdown table for docs/benchmarks.md: throughput as a ratio against the
# unpatched server measured in the same run, and growth over the run.
# Exit status: 0 when every check held.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
BUILD=${2:-build}
if ! [[ $SECONDS_EACH =~ ^[1-9][0-9]*$ ]]; then
    echo "soak.sh: SECONDS must be a positive whole number, not '$SECONDS_EACH'" >&2
    exit 2
fi
[ -d "$BUILD" ] || meson setup "$BUILD" >/dev/null || exit 1
ninja -C "$BUILD" tests/fault/test_fault_echo_soak tests/fault/test_fault_short_connections \
    tests/fault/test_fault_slowloris tests/fault/test_fault_peer_reset tests/fault/test_fault_emfile \
    examples/echo_threads examples/http_threads interpose/libgreen-preload.so >/dev/null || exit 1

export GREEN_EXAMPLES_DIR=$PWD/$BUILD/examples
export GREEN_PRELOAD=$PWD/$BUILD/interpose/libgreen-preload.so
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
echo "soak: $SECONDS_EACH s per run, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), commit $(git rev-parse --short HEAD)"
for t in echo_soak short_connections; do
    GREEN_SOAK_SECONDS=$SECONDS_EACH "$BUILD/tests/fault/test_fault_$t" 2>&1 | tee -a "$log" |
        grep -E '^(echo soak|short connections)|FAILED|Failure'
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
for t in slowloris peer_reset emfile; do
    if "$BUILD/tests/fault/test_fault_$t" >"$log.$t" 2>&1; then
        echo "$t: passed"
    else
        echo "$t: FAILED"
        grep -E 'Failure|FAILED' "$log.$t"
        status=1
    fi
    rm -f "$log.$t"
done

python3 - "$log" "$SECONDS_EACH" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
secs = sys.argv[2]
soak = {m[0]: m for m in re.findall(
    r"echo soak (\w+): (\d+) connections, (\d+) rounds, ([\d.]+) MiB echoed in ([\d.]+) s \(([\d.]+) MiB/s\); "
    r"server RSS (\d+) -> (\d+) KiB, maps (\d+) -> (\d+), fds (\d+), OS threads (\d+)", text)}
short = {m[0]: m for m in re.findall(
    r"short connections (\w+): (\d+) after \d+ warm-up in ([\d.]+) s \((\d+)/s\); fds (\d+) -> (\d+), "
    r"maps (\d+) -> (\d+), RSS (\d+) -> (\d+) KiB, OS threads (\d+) -> (\d+)", text)}
def table(title, columns, found, rate, cells):
    """One Markdown table: a row per server, the rate column as a ratio to unpatched."""
    print(f"\n#### {title}\n")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    base = float(found["unpatched"][rate]) if "unpatched" in found else None
    for mode in ("unpatched", "hubs1", "hubs2"):
        if mode not in found:
            print(f"| {mode} | failed |" + " |" * (len(columns) - 2))
            continue
        m = found[mode]
        ratio = f"{float(m[rate]) / base:.2f}" if base else "-"
        print("| " + " | ".join([mode] + cells(m, ratio)) + " |")

table(f"Echo soak, 2,000 connections, {secs} s per server",
      ["server", "MiB echoed", "MiB/s", "ratio", "server RSS KiB (start -> end)", "maps", "OS threads"], soak, 5,
      lambda m, ratio: [m[3], m[5], ratio, f"{m[6]} -> {m[7]}", f"{m[8]} -> {m[9]}", m[11]])
table(f"Short connections, 32 at a time, {secs} s per server",
      ["server", "connections", "per s", "ratio", "fds", "maps", "RSS KiB"], short, 3,
      lambda m, ratio: [m[1], m[3], ratio, f"{m[4]} -> {m[5]}", f"{m[6]} -> {m[7]}", f"{m[8]} -> {m[9]}"])
PY
echo "soak: $([ $status -eq 0 ] && echo 'every check held' || echo 'FAILED')"
exit $status
