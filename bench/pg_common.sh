# Sourced by the benchmarks that need PostgreSQL (scenarios_pg.sh,
# pg_sched.sh), from the repository root, before their own work:
#
#   pg_bench_start NAME "$@"
#     re-runs the calling script under scripts/pg_scratch.sh (a throw-away
#     PostgreSQL; deps.sh first installs what is missing) unless it already
#     runs there; exits 1 with one line naming NAME when PostgreSQL is missing.
#   pg_bench_build BUILD
#     configures BUILD as a release build if it is not one yet, and builds
#     pg_threads, greenbench, greenrun and the shim in it.

pg_bench_start() {
  local name=$1
  shift
  if [ -z "${GREEN_PG_BIN:-}" ]; then
    bash scripts/deps.sh
    exec bash scripts/pg_scratch.sh -- bash "$0" "$@"
  fi
  if [ -n "${GREEN_PG_UNAVAILABLE:-}" ]; then
    echo "$name: $GREEN_PG_UNAVAILABLE" >&2
    exit 1
  fi
}

pg_bench_build() {
  [ -f "$1/build.ninja" ] || meson setup "$1" --buildtype=release >/dev/null
  ninja -C "$1" examples/pg_threads tools/greenbench tools/greenrun interpose/libgreen-preload.so >/dev/null
}
