#!/usr/bin/env bash
# Installs what is missing, builds, and answers "would this sync server be
# faster under green?" for examples/http_threads (thread-per-connection,
# plain sockets, no green headers): greenbench compare runs it unpatched and
# under greenrun, loads /hello (static) and /upstream?ms=10
# (a blocking call to a delay server) at 16, 256 and 1000 connections, and
# prints the side-by-side table. About two minutes after the build.
#
# Environment: GREEN_BUILD_DIR (default build), DEMO_LEVELS (default
# 16,256,1000), DEMO_SECONDS per level (default 2), DEMO_HUBS (GREEN_HUBS
# values for the patched runs, default adaptive, the shim's own default;
# e.g. 1,2,adaptive).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
BUILD=${GREEN_BUILD_DIR:-build}
if [ -d "$BUILD" ]; then meson setup --reconfigure "$BUILD" >/dev/null; else meson setup "$BUILD" >/dev/null; fi
ninja -C "$BUILD" examples/http_threads tools/greenbench tools/greenrun interpose/libgreen-preload.so >/dev/null
OUT="$BUILD/demo"
mkdir -p "$OUT"

# The backend /upstream calls; it prints "listening on PORT" once it accepts.
exec 3< <(exec "$BUILD/tools/greenbench" delay-server)
delay_pid=$!
trap 'kill "$delay_pid" 2>/dev/null || true' EXIT
read -r -t 10 -u 3 line || { echo "demo: the delay server did not start" >&2; exit 1; }
delay_port=${line##* }

echo "green demo: examples/http_threads, unpatched vs greenrun (patched), on $(nproc) CPUs."
echo "ratio > 1.00x: faster under green. The load generator, greenbench, is itself a green program."
"$BUILD/tools/greenbench" compare --no-progress -c "${DEMO_LEVELS:-16,256,1000}" --hubs "${DEMO_HUBS:-adaptive}" \
  -d "${DEMO_SECONDS:-2}" -w 0.5 -p /hello -p '/upstream?ms=10' \
  --title "http_threads: unpatched vs greenrun" \
  --json "$OUT/compare.json" --svg "$OUT/compare.svg" --markdown "$OUT/compare.md" \
  -- "$BUILD/examples/http_threads" 0 "$delay_port"
echo "(the chart: $OUT/compare.svg)"
