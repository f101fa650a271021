#!/usr/bin/env bash
# What the kernel gave the server: examples/pg_threads under one load level,
# unpatched and under greenrun, each measured over 2 s of steady load by its
# threads' /proc/PID/task/*/schedstat (CPU time, time runnable but waiting
# for a CPU, times scheduled). It tells a server that is short of CPU share
# (waiting to run) from one whose requests cost more (CPU per request) or
# that waits on something else (neither), which throughput alone cannot.
#
# Usage: bench/pg_sched.sh [PATH] [CONNECTIONS]     (default /read?id=42 256)
#   PG_SCHED_ORDER   the runs, in order (default "unpatched patched"): the
#                    database keeps what a run queued (row-lock waiters of
#                    clients that are gone) into the next one, so run both
#                    orders before comparing. A run "patched=SO" preloads
#                    that libgreen-preload.so instead of the build's (two
#                    builds of the shim side by side)
#   PG_SCHED_HUBS    GREEN_HUBS for the patched run (default: the shim's)
#   PG_SCHED_ARGS    pg_threads options (default none: a connection per thread)
#   PG_SCHED_SESSION own (default): the server in a session of its own, as
#                    greenbench compare runs it; same: in this script's, where
#                    it competes with the load generator thread by thread
#   PG_SCHED_WARMUP  seconds of load before the measured window (default 3: a
#                    thread per connection opens its database connection on
#                    its first request, and PostgreSQL forks its backends one
#                    by one: 1,000 take a few seconds here)
#   GREEN_BUILD_DIR  build directory (default build-scenarios, release)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/pg_common.sh
pg_bench_start pg_sched "$@"
PATH_=${1:-/read?id=42}
CONNS=${2:-256}
WARMUP=${PG_SCHED_WARMUP:-3}
BUILD=${GREEN_BUILD_DIR:-build-scenarios}
pg_bench_build "$BUILD"
ulimit -n 20000 2>/dev/null || true

# Sums over the process's threads: CPU ns, run-queue wait ns, times run.
snapshot() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{c += $1; w += $2; n += $3} END {print c, w, n}'; }

caller_nice=$(sed -n 's/.* nice //p' /proc/self/autogroup 2>/dev/null || true)
# A server left running would load the next measurement (and the next script).
server=""
trap '[ -z "$server" ] || kill "$server" 2>/dev/null || true' EXIT
for run in ${PG_SCHED_ORDER:-unpatched patched}; do
  bash bench/pg_quiesce.sh  # the last run's backends gone, as in the scenarios
  runner=()
  [ "${PG_SCHED_SESSION:-own}" = same ] || runner=(setsid)
  if [ "${run%%=*}" = patched ]; then
    runner+=("$BUILD/tools/greenrun")
    [ -z "${PG_SCHED_HUBS:-}" ] || runner+=(--hubs "$PG_SCHED_HUBS")
    [ "$run" = patched ] || runner+=(--preload "${run#patched=}")
    runner+=(--)
  fi
  # shellcheck disable=SC2086
  exec 4< <(exec "${runner[@]}" "$BUILD/examples/pg_threads" 0 ${PG_SCHED_ARGS:-} 2>/dev/null)
  server=$!
  read -r -t 20 -u 4 line || { echo "pg_sched: pg_threads ($run) did not start" >&2; exit 1; }
  # Its own session gets this one's autogroup nice, as greenbench compare and
  # pg_scratch.sh give theirs (else a run at nice -20 measures a server at 0).
  [ "${PG_SCHED_SESSION:-own}" = same ] || [ -z "$caller_nice" ] || echo "$caller_nice" >"/proc/$server/autogroup" 2>/dev/null || true
  port=${line##* }
  result=$(mktemp)
  "$BUILD/tools/greenbench" run -q -t 1 -c "$CONNS" -d 3 -w "$WARMUP" --json "$result" "http://127.0.0.1:$port$PATH_" >/dev/null &
  load=$!
  sleep "$(echo "$WARMUP" | awk '{print $1 + 0.5}')"  # into the measured window
  before=$(snapshot "$server")
  sleep 2
  after=$(snapshot "$server")
  wait "$load" || true  # requests that timed out or failed are part of the measurement
  read -r rps p99 < <(python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(round(d["requests_per_s"]), d["latency_ms"]["p99"])' "$result")
  rm -f "$result"
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=""
  exec 4<&-
  echo "$before $after" | awk -v run="$run" -v rps="$rps" -v p99="$p99" -v path="$PATH_" -v c="$CONNS" '{
    cpu = ($4 - $1) / 2e9; wait = ($5 - $2) / 2e9; runs = $6 - $3
    printf "%-9s %s c=%s: %s req/s, p99 %.1f ms; server CPU %.2f cores, %.0f us/request; waited to run %.2f of the time (summed over threads), %.1f us per time scheduled\n",
      run, path, c, rps, p99, cpu, (rps > 0 ? cpu * 1e6 / rps : 0), wait, (runs > 0 ? wait * 2e9 / runs / 1000 : 0)
  }'
done
