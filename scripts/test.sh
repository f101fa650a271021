#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite.
# Ends with one line "tests: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
BUILD=${GREEN_BUILD_DIR:-build}
if [ -d "$BUILD" ]; then meson setup --reconfigure "$BUILD" >/dev/null; else meson setup "$BUILD" >/dev/null; fi
ninja -C "$BUILD"
status=0
meson test -C "$BUILD" --print-errorlogs --num-processes 2 || status=$?
python3 - "$BUILD/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"): passed += 1
    elif r == "SKIP": skipped += 1
    else: failed += 1
print(f"tests: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
exit $status
