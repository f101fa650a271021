#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
BUILD=${GREEN_BUILD_DIR:-build}
if [ -d "$BUILD" ]; then meson setup --reconfigure "$BUILD" >/dev/null; else meson setup "$BUILD" >/dev/null; fi
ninja -C "$BUILD" >/dev/null
exec "$BUILD/examples/fiber_demo"
