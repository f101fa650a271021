#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite: the normal
# build (everything), then each sanitizer build in its own directory next to
# it: the runtime suite under ASan (DIR-asan) and TSan (DIR-tsan), everything
# under UBSan (DIR-ubsan); tests/meson.build decides what each one holds.
# Directories are kept between runs, so a rerun rebuilds only what changed,
# and ccache (found by meson on PATH) shares objects between checkouts.
#
# Ends with one line "tests: N passed, M failed" summing every build (CI
# reads it); a build that does not compile counts as one failed test.
#
#   GREEN_BUILD_DIR=DIR    the normal build directory (default: build)
#   GREEN_SANITIZERS=LIST  sanitizer builds to run, of "address thread undefined"
#                          (the default); empty for the normal build alone
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh || exit 1
BUILD=${GREEN_BUILD_DIR:-build}
SANITIZERS=${GREEN_SANITIZERS-address thread undefined}
for s in $SANITIZERS; do
    case $s in
        address | thread | undefined) ;;
        *) echo "GREEN_SANITIZERS: '$s' is not one of: address thread undefined" >&2; exit 2 ;;
    esac
done
# Paths below the checkout are hashed relative to it, so another checkout of
# the same sources hits the same ccache entries.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}

tally=$(mktemp)
trap 'rm -f "$tally"' EXIT
status=0

# count DIR LABEL SECONDS: adds DIR's test results to the tally, prints them.
count() {
    python3 - "$1/meson-logs/testlog.json" "$2" "$3" "$tally" <<'PY'
import json, os, sys
log, label, seconds, tally = sys.argv[1:5]
passed = failed = skipped = 0
if os.path.exists(log):
    for line in open(log):
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"): passed += 1
        elif r == "SKIP": skipped += 1
        else: failed += 1
else:
    failed = 1  # it did not build, or meson test could not start
    print(f"{label}: did not build")
print(f"{label}: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else "") + f" ({seconds} s)")
with open(tally, "a") as f:
    f.write(f"{passed} {failed} {skipped}\n")
PY
}

# run_build DIR SANITIZER
run_build() {
    local dir=$1 sanitizer=$2 start=$SECONDS label
    local -a options=() test_options=(--print-errorlogs --num-processes 2)
    if [ "$sanitizer" = none ]; then
        label="$dir"
    else
        label="$dir (-Dfiber_sanitizer=$sanitizer)"
        # Benchmarks prove nothing under a sanitizer. -O1 (what the sanitizers
        # recommend) compiles in about half the CPU time of the default -O2.
        # Instrumented tests run several times slower: their hang guards are
        # stretched to match.
        options=(-Dfiber_sanitizer="$sanitizer" -Dbenchmarks=false -Doptimization=1)
        test_options+=(--timeout-multiplier 4)
    fi
    echo "=== $label"
    rm -f "$dir/meson-logs/testlog.json"
    local configured=0
    if [ -d "$dir" ]; then
        meson setup --reconfigure "$dir" "${options[@]}" >/dev/null && configured=1
    else
        meson setup "$dir" "${options[@]}" >/dev/null && configured=1
    fi
    if ((configured)); then
        # The normal build builds everything (benchmarks and tools must
        # compile too); meson test alone builds just what its tests need.
        if [ "$sanitizer" != none ] || ninja -C "$dir"; then
            meson test -C "$dir" "${test_options[@]}" || status=1
        else
            status=1
        fi
    else
        status=1
    fi
    count "$dir" "$label" $((SECONDS - start))
}

run_build "$BUILD" none
for s in $SANITIZERS; do
    case $s in
        address) run_build "$BUILD-asan" address ;;
        thread) run_build "$BUILD-tsan" thread ;;
        undefined) run_build "$BUILD-ubsan" undefined ;;
    esac
done
awk '{ p += $1; f += $2; s += $3 } END {
  printf "tests: %d passed, %d failed%s\n", p, f, (s ? sprintf(", %d skipped", s) : "")
  exit (f > 0) }' "$tally" || status=1
exit $status
