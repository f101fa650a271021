#!/usr/bin/env bash
# The articles' three scenarios on our own sync examples, patched vs unpatched
# vs a fixed pool of 4 workers, written into docs/benchmarks.md (its own
# section, between markers; the rest of the file is left alone) with the
# tables, a chart (docs/charts/greenbench-scenarios.svg) and this command.
#
#   static           GET /hello              nothing to wait for
#   I/O-bound        GET /upstream?ms=20     a blocking call to a delay server
#   contended write  GET /counter?us=50      a std::mutex held 50 us per request
#
# Each server (examples/http_threads: a thread per connection; examples/
# http_pool: 4 workers) runs unpatched and under greenrun; greenbench sweeps
# the concurrency levels. It also runs wrk and greenbench against the same
# server, to show the load generator is not the bottleneck.
#
# Usage: bench/scenarios.sh            (about 4 minutes on 2 CPUs)
#   GREEN_BUILD_DIR   build directory (default build-scenarios, release)
#   SCENARIO_LEVELS   concurrency levels (default 16,256,2000)
#   SCENARIO_SECONDS  seconds measured per level (default 3; 1 s warm-up each)
#   SCENARIO_HUBS     GREEN_HUBS values for the patched runs (default 1)
#   SCENARIO_DOC      file to write the section into (default docs/benchmarks.md)
#   SCENARIO_PG       1 (default): then run bench/scenarios_pg.sh, the database
#                     scenarios on a throw-away PostgreSQL (about 10 minutes more); 0: skip
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh wrk
BUILD=${GREEN_BUILD_DIR:-build-scenarios}
LEVELS=${SCENARIO_LEVELS:-16,256,2000}
SECS=${SCENARIO_SECONDS:-3}
HUBS=${SCENARIO_HUBS:-1}
DOC=${SCENARIO_DOC:-docs/benchmarks.md}
CHART=docs/charts/greenbench-scenarios.svg
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release >/dev/null
ninja -C "$BUILD" examples/http_threads examples/http_pool tools/greenbench tools/greenrun \
  interpose/libgreen-preload.so >/dev/null
OUT="$BUILD/scenarios"
mkdir -p "$OUT" "$(dirname "$CHART")"
GB="$BUILD/tools/greenbench"

exec 3< <(exec "$GB" delay-server)
delay_pid=$!
server_pid=
cleanup() {
  kill "$delay_pid" 2>/dev/null || true
  [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
}
trap cleanup EXIT
read -r -t 10 -u 3 line || { echo "scenarios: the delay server did not start" >&2; exit 1; }
delay_port=${line##* }

paths=(-p /hello -p '/upstream?ms=20' -p '/counter?us=50')
for server in http_threads http_pool; do
  echo "== $server" >&2
  "$GB" compare --no-progress -c "$LEVELS" --hubs "$HUBS" -d "$SECS" -w 1 "${paths[@]}" --label "$server" \
    --json "$OUT/$server.json" --svg "" -- "$BUILD/examples/$server" 0 "$delay_port" >"$OUT/$server.txt"
done
"$GB" report "$OUT/http_threads.json" "$OUT/http_pool.json" \
  --title "Sync servers: thread per connection vs 4 workers, unpatched vs greenrun" \
  --markdown "$OUT/tables.md" --svg "$CHART" | tee "$OUT/tables.txt"

# wrk and greenbench, one thread and 64 connections each, against the same
# unpatched http_threads /hello, alternated twice; the better run of each.
exec 4< <(exec "$BUILD/examples/http_threads" 0)
server_pid=$!
read -r -t 10 -u 4 line || { echo "scenarios: http_threads did not start" >&2; exit 1; }
port=${line##* }
wrk_best=0 gb_best=0
for _ in 1 2; do
  w=$(wrk -t1 -c64 -d3s "http://127.0.0.1:$port/hello" | awk '/Requests\/sec/ {print $2}')
  g=$("$GB" run -q -t 1 -c 64 -d 3 --json - "http://127.0.0.1:$port/hello" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["requests_per_s"])')
  wrk_best=$(python3 -c "print(max($wrk_best, $w))")
  gb_best=$(python3 -c "print(max($gb_best, $g))")
done
kill "$server_pid"
server_pid=

python3 - "$DOC" "$OUT/tables.md" "$CHART" "$wrk_best" "$gb_best" "$LEVELS" "$SECS" "$HUBS" <<'PY'
import json, os, subprocess, sys, time
doc, tables_md, chart, wrk, gb, levels, secs, hubs = sys.argv[1:]
begin = "<!-- BEGIN greenbench scenarios: written by bench/scenarios.sh; edit the script, not this section -->"
end = "<!-- END greenbench scenarios -->"
machine = json.load(open(os.path.join(os.path.dirname(tables_md), "http_threads.json")))["machine"]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
wrk, gb = float(wrk), float(gb)
section = f"""{begin}
## Sync servers under greenrun: static, I/O-bound, contended write

Would a synchronous server be faster under green? The three scenarios the articles measure, on our
own ordinary sync examples (no green headers): `examples/http_threads` (a thread per connection)
and `examples/http_pool` (4 worker threads), each run unpatched and under `greenrun`, loaded by
`greenbench` at {levels.replace(',', ', ')} keep-alive connections ({secs} s measured per level
after 1 s of warm-up; GREEN_HUBS={hubs}).

- **static** — `GET /hello`: no waiting at all; only the cost of threads vs fibers shows.
- **I/O-bound** — `GET /upstream?ms=20`: each request makes a blocking HTTP call to a delay server
  (`greenbench delay-server`) that answers after 20 ms. Throughput is bounded by how many requests
  can wait at once: one per thread unpatched, one per fiber patched; the pool caps it at 4 / 20 ms
  = 200 req/s either way.
- **contended write** — `GET /counter?us=50`: a `std::mutex`-protected counter held 50 µs per
  request. At most 20,000 req/s whoever waits for the lock; green cannot make a serialised section
  parallel, and should tie.

Reproduce with `bash bench/scenarios.sh` (commit {commit}, {time.strftime('%Y-%m-%d')}; {machine}).
The machine is shared and small: the server, the delay server and the load generator compete for
the same 2 CPUs, so compare columns of one table (taken minutes apart), not with other machines.
Ratios are patched / unpatched of the same server.

![requests/s and p99 latency per scenario](charts/{os.path.basename(chart)})

{open(tables_md).read().rstrip()}

**The load generator is not the bottleneck.** Against the same unpatched `http_threads /hello`,
one thread and 64 connections each, best of two 3 s runs: wrk {wrk:,.0f} req/s, greenbench
{gb:,.0f} req/s ({gb / wrk:.2f}x wrk). The `load CPU` column above is greenbench's own CPU use in
each measurement.
{end}
"""
sys.path.insert(0, "bench")
from doc_section import write_section
write_section(doc, begin, end, section)
print(f"scenarios: wrote the section of {doc} and {chart}")
PY
if [ "${SCENARIO_PG:-1}" = 1 ]; then
  GREEN_BUILD_DIR=$BUILD SCENARIO_HUBS=$HUBS SCENARIO_SECONDS=$SECS SCENARIO_DOC=$DOC bash bench/scenarios_pg.sh
fi
