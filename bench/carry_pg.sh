#!/usr/bin/env bash
# Adds the database scenarios to a bundle made by bench/carry_build.sh, for a
# machine lent without a compiler, PostgreSQL or Debian's libraries: the
# pg_threads example, and this machine's PostgreSQL (server, initdb, psql,
# pgbench) with every library it loads, in one compressed archive (the
# libraries are too large to carry as they are).
#
# PostgreSQL finds its share/ and lib/ folders relative to its bin/ folder,
# so the installation tree is kept as it is under a new root; its binaries get
# Debian's loader and libraries from /tmp/gl, as the bundle's own do. The
# time zone files it was built to read from /usr/share/zoneinfo come along
# for a machine that has none.
#
# Usage: bench/carry_pg.sh [BUNDLE]        (default .devbundle; after carry_build.sh)
# On the other machine, from a copy of the repository with BUNDLE in it:
#   rm -rf /tmp/gl /tmp/glpg && cp -r BUNDLE/sys /tmp/gl && mkdir /tmp/glpg &&
#   tar -C /tmp/glpg -xzf BUNDLE/pg.tar.gz && cp /tmp/glpg/sys/* /tmp/gl/ &&
#   { [ -e /usr/share/zoneinfo/UTC ] || cp -r /tmp/glpg/zoneinfo /usr/share/; }
#   GREEN_PG_BIN_DIR=$(echo /tmp/glpg/pg/usr/lib/postgresql/*/bin) bash scripts/pg_scratch.sh -- \
#     env GREEN_BUILD_DIR=BUNDLE/build SCENARIO_PREBUILT=1 bash bench/scenarios_pg.sh
# (with SCENARIO_SECTION, SCENARIO_CPU_SERVER, SCENARIO_CPU_LOAD and PG_CPUS as
# that machine's CPU count calls for; docs/benchmarks.md names the ones used).
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=${1:-.devbundle}
BUILD=${GREEN_BUILD_DIR:-build-scaling}
LIBS=/tmp/gl
[ -d "$BUNDLE/sys" ] || { echo "carry_pg: $BUNDLE has no sys/; run bench/carry_build.sh first" >&2; exit 1; }
command -v patchelf >/dev/null || { echo "carry_pg: patchelf is needed (apt-get install patchelf)" >&2; exit 1; }
PG_BIN=
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && PG_BIN=$d; done
[ -n "$PG_BIN" ] || { echo "carry_pg: PostgreSQL is not installed (bash scripts/deps.sh)" >&2; exit 1; }
PG_HOME=$(dirname "$PG_BIN")                          # /usr/lib/postgresql/N
PG_SHARE=/usr/share/postgresql/$(basename "$PG_HOME")
ninja -C "$BUILD" examples/pg_threads >/dev/null
cp "$BUILD/examples/pg_threads" "$BUNDLE/build/examples/"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/pg"
mkdir -p "$root$PG_BIN" "$root$PG_HOME/lib" "$(dirname "$root$PG_SHARE")" "$stage/sys" "$stage/zoneinfo/Etc"
for exe in postgres initdb pg_ctl pg_isready psql pgbench; do cp "$PG_BIN/$exe" "$root$PG_BIN/"; done
# The server's loadable modules (initdb loads plpgsql and the snowball
# dictionaries); not the JIT, whose LLVM alone would outweigh the rest.
find "$PG_HOME/lib" -maxdepth 1 -name '*.so' ! -name 'llvmjit*' -exec cp {} "$root$PG_HOME/lib/" \;
cp -r "$PG_SHARE" "$root$PG_SHARE"
for z in UTC GMT Etc/UTC Etc/GMT; do cp -L "/usr/share/zoneinfo/$z" "$stage/zoneinfo/$z"; done

# Every library these load that the bundle does not have yet.
for f in "$root$PG_BIN"/* "$root$PG_HOME"/lib/*.so "$BUNDLE/build/examples/pg_threads"; do
  ldd "$f" | awk '$3 ~ /^\// {print $3}'
done | sort -u | while read -r lib; do
  [ -e "$BUNDLE/sys/$(basename "$lib")" ] || cp -L "$lib" "$stage/sys/"
done
for exe in "$root$PG_BIN"/* "$BUNDLE/build/examples/pg_threads"; do
  patchelf --set-interpreter "$LIBS/ld-linux-x86-64.so.2" "$exe"
  patchelf --force-rpath --set-rpath "$LIBS" "$exe"
done
tar -C "$stage" -czf "$BUNDLE/pg.tar.gz" pg sys zoneinfo
echo "carry_pg: $BUNDLE/pg.tar.gz ($(du -sh "$BUNDLE/pg.tar.gz" | cut -f1)); bundle $(du -sh "$BUNDLE" | cut -f1)"
