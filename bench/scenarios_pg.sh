#!/usr/bin/env bash
# The articles' database scenarios on a real PostgreSQL, patched vs unpatched,
# written into docs/benchmarks.md (its own section, between markers) with the
# tables, a chart (docs/charts/greenbench-pg.svg) and this command.
#
#   static   GET /static         no database
#   read     GET /read?id=42     a prepared primary-key SELECT
#   write    GET /write          BEGIN; SELECT ... FOR UPDATE on one row; UPDATE; COMMIT
#
# examples/pg_threads (libpq, a thread per connection) runs with a pool of
# PG_POOL connections behind std::mutex + std::condition_variable, and with one
# connection per thread; each unpatched and under greenrun, SCENARIO_ROUNDS
# times (the rounds alternate, so slow drift of a shared machine hits both
# sides). Before each server starts, bench/pg_quiesce.sh waits until the
# database has let go of the last one's connections; after each level a
# server gets 120 s to answer a lone request (per-thread /write at 1,000
# clients leaves PostgreSQL a row-lock queue that took over 30 s to drain
# unpatched too). Then pgbench -S (an
# unmodified threaded client), unpatched and under
# greenrun, alternated. The database is scripts/pg_scratch.sh's throw-away one.
#
# Usage: bench/scenarios_pg.sh        (about 10 minutes on 2 CPUs)
#   GREEN_BUILD_DIR   build directory (default build-scenarios, release)
#   SCENARIO_LEVELS   concurrency levels (default 16,256,1000)
#   SCENARIO_SECONDS  seconds measured per level (default 3)
#   SCENARIO_WARMUP   seconds of load before each (default 3: with a connection
#                     per thread, every level opens its database connections
#                     anew, and PostgreSQL forks 1,000 backends in 1-3 s here;
#                     a shorter warm-up measures that start, not the server)
#   SCENARIO_HUBS     GREEN_HUBS values for the patched runs (default 1)
#   SCENARIO_ROUNDS   rounds of everything (default 2)
#   PGBENCH_ROUNDS    rounds of pgbench (default 9: each variant first 3 times with 2 hub settings)
#   PGBENCH_SECONDS   seconds per pgbench run (default 5)
#   PG_POOL           connections in the pooled mode (default 20)
#   SCENARIO_DOC      file to write the section into (default docs/benchmarks.md)
#   SCENARIO_SECTION  name of the docs section written (default: the 2-CPU one)
#   SCENARIO_CPU_SERVER, SCENARIO_CPU_LOAD
#                     CPUs (comma-separated) to pin the server and the load
#                     generator (greenbench, pgbench) to; with PG_CPUS
#                     (scripts/pg_scratch.sh) for PostgreSQL, each gets cores
#                     of its own, as on separate machines (default: unpinned)
#   SCENARIO_PREBUILT=1  use GREEN_BUILD_DIR as it is (a bundle from
#                     bench/carry_build.sh and bench/carry_pg.sh on a machine
#                     without a compiler)
#   SCENARIO_REPORT_ONLY=1  rewrite the section from the last run's results only
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/pg_common.sh
pg_bench_start scenarios_pg "$@"
BUILD=${GREEN_BUILD_DIR:-build-scenarios}
LEVELS=${SCENARIO_LEVELS:-16,256,1000}
SECS=${SCENARIO_SECONDS:-3}
WARMUP=${SCENARIO_WARMUP:-3}
HUBS=${SCENARIO_HUBS:-1}
ROUNDS=${SCENARIO_ROUNDS:-2}
PGB_ROUNDS=${PGBENCH_ROUNDS:-9}
PGB_SECS=${PGBENCH_SECONDS:-5}
POOL=${PG_POOL:-20}
DOC=${SCENARIO_DOC:-docs/benchmarks.md}
SECTION=${SCENARIO_SECTION:-}
CPU_SERVER=${SCENARIO_CPU_SERVER:-}
CPU_LOAD=${SCENARIO_CPU_LOAD:-}
CHART=docs/charts/greenbench-pg${SECTION:+-$SECTION}.svg
[ "${SCENARIO_PREBUILT:-0}" = 1 ] || pg_bench_build "$BUILD"
pin=()
[ -z "$CPU_SERVER" ] || pin+=(--cpu-server "$CPU_SERVER")
[ -z "$CPU_LOAD" ] || pin+=(--cpu-load "$CPU_LOAD")
load_cpus=()
[ -z "$CPU_LOAD" ] || load_cpus=(taskset -c "$CPU_LOAD")
OUT="$BUILD/scenarios-pg"
mkdir -p "$OUT" "$(dirname "$CHART")"
GB="$BUILD/tools/greenbench"
GR="$BUILD/tools/greenrun"
ulimit -n 20000 2>/dev/null || true

if [ "${SCENARIO_REPORT_ONLY:-0}" != 1 ]; then
paths=(-p /static -p '/read?id=42' -p /write)
jsons=()
for round in $(seq "$ROUNDS"); do
  for mode in pool per-thread; do
    args=()
    label="pg_threads per-thread r$round"
    if [ "$mode" = pool ]; then args=(--pool "$POOL"); label="pg_threads pool $POOL r$round"; fi
    echo "== $label" >&2
    "$GB" compare --no-progress -c "$LEVELS" --hubs "$HUBS" -d "$SECS" -w "$WARMUP" "${paths[@]}" --label "$label" "${pin[@]}" \
      --before-each "bash bench/pg_quiesce.sh" --settle-timeout 120 \
      --json "$OUT/$mode-r$round.json" --svg "" -- "$BUILD/examples/pg_threads" 0 "${args[@]}" \
      >"$OUT/$mode-r$round.txt" ||
      echo "scenarios_pg: $label: a server stopped answering; its JSON says where, the tables show the gap" >&2
    jsons+=("$OUT/$mode-r$round.json")
  done
done
"$GB" report "${jsons[@]}" --title "pg_threads on PostgreSQL: pool vs per-thread connection, unpatched vs greenrun" \
  --markdown "$OUT/tables.md" --svg "$CHART" | tee "$OUT/tables.txt"

# pgbench -S: an unmodified threaded libpq client, 50 connections on 4 threads,
# unpatched and under greenrun with each SCENARIO_HUBS value. Each round
# starts with the next variant, so that none always runs first (5-second
# runs on this machine differ by 10-15% from one to the next whatever runs).
bash bench/pg_quiesce.sh
"$GREEN_PG_BIN/pgbench" -i -q -s 1 >/dev/null 2>&1
# "tps CPU": pgbench's transactions per second, and its own user + system
# time per transaction in microseconds (connection set-up included).
pgbench_once() {
  local cmd=("${load_cpus[@]}")
  [ "$1" = unpatched ] || cmd+=("$GR" --hubs "$1" --)
  cmd+=("$GREEN_PG_BIN/pgbench" -n -S -c 50 -j 4 -T "$PGB_SECS")
  python3 - "${cmd[@]}" <<'PY'
import re, resource, subprocess, sys
out = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
tps = re.search(r"^tps = ([0-9.]+)", out, re.M)
n = re.search(r"actually processed: ([0-9]+)", out)
done = int(n.group(1)) if n else 0
print(tps.group(1) if tps else 0, f"{(ru.ru_utime + ru.ru_stime) * 1e6 / done:.1f}" if done else 0)
PY
}
variants=(unpatched ${HUBS//,/ })
pgbench_rows=""
for round in $(seq "$PGB_ROUNDS"); do
  declare -A got=()
  for k in "${!variants[@]}"; do
    v=${variants[$(( (round - 1 + k) % ${#variants[@]} ))]}
    got[$v]=$(pgbench_once "$v")
  done
  row="$round ${variants[$(( (round - 1) % ${#variants[@]} ))]}"
  for v in "${variants[@]}"; do row+=" ${got[$v]}"; done
  pgbench_rows+="$row"$'\n'
  echo "pgbench round $round (first, then tps and CPU us/transaction per variant): $row" >&2
done
printf '%s' "$pgbench_rows" >"$OUT/pgbench.txt"

fi

python3 - "$DOC" "$OUT/tables.md" "$CHART" "$LEVELS" "$SECS" "$HUBS" "$POOL" "$ROUNDS" "$OUT" "$PGB_SECS" "$WARMUP" \
  "$SECTION" "$CPU_SERVER" "$CPU_LOAD" "${PG_CPUS:-}" "${PGBENCH_ROUNDS:-}" <<'PY'
import json, os, statistics, subprocess, sys, time
(doc, tables_md, chart, levels, secs, hubs, pool, rounds, out, pgb_secs, warmup,
 section_name, cpu_server, cpu_load, pg_cpus, pgb_rounds) = sys.argv[1:]
name = "greenbench pg scenarios" + (f" ({section_name})" if section_name else "")
begin = f"<!-- BEGIN {name}: written by bench/scenarios_pg.sh; edit the script, not this section -->"
end = f"<!-- END {name} -->"
cpus = os.cpu_count()
pinned = bool(cpu_server or cpu_load or pg_cpus)
settings = " ".join(f"{k}={v}" if " " not in v else f"{k}='{v}'" for k, v in [
    ("SCENARIO_SECTION", section_name), ("SCENARIO_HUBS", hubs if hubs != "1" else ""),
    ("SCENARIO_LEVELS", levels if levels != "16,256,1000" else ""), ("SCENARIO_ROUNDS", rounds if rounds != "2" else ""),
    ("SCENARIO_CPU_SERVER", cpu_server), ("SCENARIO_CPU_LOAD", cpu_load), ("PG_CPUS", pg_cpus),
    ("PGBENCH_ROUNDS", pgb_rounds)] if v)
placement = (f"Each has CPUs of its own, as on separate machines: the server {cpu_server or 'any'}, PostgreSQL "
             f"{pg_cpus or 'any'}, the load generator (greenbench, pgbench) {cpu_load or 'any'}."
             if pinned else
             "The server, PostgreSQL's backends and the load generator share these CPUs; PostgreSQL runs in a session "
             "of its own, as pg_ctl starts it (with autogroup scheduling the kernel shares CPU between sessions first).")
machine = json.load(open(os.path.join(os.path.dirname(tables_md), "pool-r1.json")))["machine"]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
load = open("/proc/loadavg").read().split()[0]

# Compact views of the rounds: per path and level, patched / unpatched of the
# same round, and the server's CPU per answered request (a cost that load on
# the machine changes far less than throughput).
runs = {}  # (mode, round) -> {variant: {(path, c): point}}
for mode in ("pool", "per-thread"):
    for r in range(1, int(rounds) + 1):
        d = json.load(open(os.path.join(out, f"{mode}-r{r}.json")))
        runs[(mode, r)] = {s["variant"]: {(p["path"], p["concurrency"]): p for p in s["points"]} for s in d["series"]}
variants = [v for v in runs[("pool", 1)] if v != "unpatched"]
paths = list(dict.fromkeys(k[0] for k in runs[("pool", 1)]["unpatched"]))
conc = sorted(set(k[1] for k in runs[("pool", 1)]["unpatched"]))
cols = [(m, v, r) for m in ("pool", "per-thread") for v in variants for r in range(1, int(rounds) + 1)]
def ratio_table(path):
    head = "| c | " + " | ".join(f"{m} {v.replace('patched ', '')} r{r}" for m, v, r in cols) + " |"
    rows = [head, "| ---: |" + " ---: |" * len(cols)]
    for c in conc:
        cells = []
        for m, v, r in cols:
            u, p = runs[(m, r)]["unpatched"].get((path, c)), runs[(m, r)][v].get((path, c))
            if not u or not p or not u["requests_per_s"]:
                cells.append("-")
                continue
            q = p["requests_per_s"] / u["requests_per_s"]
            l = p["latency_ms"]["p99"] / u["latency_ms"]["p99"] if u["latency_ms"]["p99"] else float("nan")
            cells.append(f"{'**' if q < 1 else ''}{q:.2f}x{'**' if q < 1 else ''} (p99 {l:.2f}x)")
        rows.append(f"| {c} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
def cpu_table():
    vs = ["unpatched"] + variants
    head = "| path | c | " + " | ".join(f"{m} {v.replace('patched ', '')}" for m in ("pool", "per-thread") for v in vs) + " |"
    rows = [head, "| --- | ---: |" + " ---: |" * (2 * len(vs))]
    for path in paths:
        for c in conc:
            cells = []
            for m in ("pool", "per-thread"):
                for v in vs:
                    xs = [runs[(m, r)][v][(path, c)] for r in range(1, int(rounds) + 1) if (path, c) in runs[(m, r)][v]]
                    cpu = sum(x["server"]["cpu_s"] for x in xs)
                    ok = sum(x["ok"] for x in xs)
                    cells.append(f"{cpu * 1e6 / ok:.0f}" if ok else "-")
            rows.append(f"| {path} | {c} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
summary = "\n\n".join(f"**{p}: requests/s patched / unpatched (p99 patched / unpatched)**\n\n{ratio_table(p)}" for p in paths)
# pgbench.txt: round, the variant that ran first, then "tps CPU" per variant
# (unpatched, then each hub setting).
hub_list = hubs.split(",")
pgb = [l.split() for l in open(os.path.join(out, "pgbench.txt")).read().splitlines() if l.strip()]
pgb = [(r[0], r[1], [(float(r[2 + 2 * i]), float(r[3 + 2 * i])) for i in range(1 + len(hub_list))])
       for r in pgb if len(r) == 4 + 2 * len(hub_list)]
def pgb_cell(u, p):
    q = p[0] / u[0] if u[0] else float("nan")
    return f"{p[0]:,.0f} ({'**' if q < 0.95 else ''}{q:.2f}x{'**' if q < 0.95 else ''}), {p[1]:.1f} µs"
pgbench_head = ("| round | first | unpatched tps, CPU/transaction | " +
                " | ".join(f"hubs={h} tps (ratio), CPU/transaction" for h in hub_list) + " |")
pgbench_rows = "\n".join([pgbench_head, "| ---: | --- | ---: |" + " ---: |" * len(hub_list)] +
    [f"| {n} | {first} | {v[0][0]:,.0f}, {v[0][1]:.1f} µs | " + " | ".join(pgb_cell(v[0], p) for p in v[1:]) + " |"
     for n, first, v in pgb] +
    ["| median | | " + f"{statistics.median(v[0][1] for _, _, v in pgb):.1f} µs | " +
     " | ".join(f"{statistics.median(v[1 + i][0] / v[0][0] for _, _, v in pgb if v[0][0]):.2f}x, "
                f"{statistics.median(v[1 + i][1] for _, _, v in pgb):.1f} µs" for i in range(len(hub_list))) + " |"])
section = f"""{begin}
## A database-bound server: pg_threads on PostgreSQL{'' if not section_name else f' ({cpus} CPUs)'}

The articles' database scenarios on `examples/pg_threads`, an ordinary libpq server (plain sockets,
a `std::thread` per connection, no green headers), against a real PostgreSQL 15 on the same machine
(`scripts/pg_scratch.sh`: a throw-away cluster on 127.0.0.1, durability off so that the shared
disk does not decide). Two ways to reach the database: a pool of {pool} connections behind
`std::mutex` + `std::condition_variable`, and one connection per handling thread. Each runs unpatched
and under `greenrun` (GREEN_HUBS={hubs}), loaded by `greenbench` at {levels.replace(',', ', ')}
keep-alive connections ({secs} s per level after {warmup} s of warm-up), {rounds} rounds (r1, r2, ...).
Each server runs in a session of its own, as a service would (`greenbench compare`'s default).

- **static** — `GET /static`: no database.
- **read** — `GET /read?id=42`: one prepared primary-key `SELECT`.
- **write** — `GET /write`: `BEGIN`, `SELECT value ... FOR UPDATE` on one row, `UPDATE`, `COMMIT`:
  every request contends for the same row lock, so PostgreSQL serialises them.

Reproduce with `{settings + ' ' if settings else ''}bash bench/scenarios_pg.sh` (commit {commit}, {time.strftime('%Y-%m-%d')}; {machine};
load average {load} when it finished). {placement} Compare the columns of one table, and the rounds
with each other. Ratios are patched / unpatched of the same server.

![requests/s and p99 latency per scenario](charts/{os.path.basename(chart)})

{summary}

**Server CPU per answered request, µs** (the server's user+system CPU over the requests it answered,
all rounds): what a request costs the server, which the machine's load changes far less than
throughput.

{cpu_table()}

<details><summary>All measurements (requests/s, p99, errors, RSS, threads, CPU)</summary>

{open(tables_md).read().rstrip()}

</details>

**pgbench -S** (select-only, `pgbench -n -S -c 50 -j 4 -T {pgb_secs}`, scale 1): an unmodified
threaded libpq client, unpatched vs `greenrun --hubs H`, one after the other within each round
(each round starts with the next variant: "first"); ratios against the same round's unpatched
run, and pgbench's own CPU (user + system) per transaction:

{pgbench_rows}
{end}
"""
sys.path.insert(0, "bench")
from doc_section import write_section
write_section(doc, begin, end, section)
print(f"scenarios_pg: wrote the section of {doc} and {chart}")
PY
