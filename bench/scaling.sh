#!/usr/bin/env bash
# Does the shim use every core? examples/http_threads (a thread per connection)
# under a CPU-heavy route and a static one, unpatched and under greenrun with
# 1..CPUS hubs and with the default hub count, written into docs/benchmarks.md
# (its own section between markers) with the per-request costs the scaling
# model is built from (bench/bench_scaling.cpp) and the model itself.
#
# The load generator is kept cheap next to the server: one greenbench thread,
# few keep-alive connections, pinned to the last CPU with taskset (the server
# is not pinned: its hubs may use every CPU, as unpatched threads may).
# Configurations alternate within each round, and every ratio is taken within
# one round (against that round's baseline), then the median over rounds.
#
# Usage: bench/scaling.sh              (about 2 minutes on 2 CPUs)
#   GREEN_BUILD_DIR   build directory (default build-scaling, release)
#   SCALING_SECONDS   seconds measured per run (default 3; 0.5 s warm-up each)
#   SCALING_ROUNDS    rounds over all configurations (default 3)
#   SCALING_DOC       file to write the section into (default docs/benchmarks.md)
#   SCALING_HUBS      hub counts to measure (default: every count 1..CPUS)
#   SCALING_WARMUP    seconds of load before each measured run (default 0.5)
#   SCALING_CLIENT_CPUS  CPUs (the last ones) and greenbench threads for the
#                     load generator (default 1)
#   SCALING_SECTION   name of the docs section written (default scaling)
#   SCALING_PREBUILT  1: use the binaries in GREEN_BUILD_DIR as they are (a
#                     copy carried to another machine, with no compiler there)
#   SCALING_NICE      nice value for this run (e.g. -20 as root on a machine
#                     shared with others' builds): set on the session's autogroup
#                     (/proc/self/autogroup; with autogroup scheduling the kernel
#                     shares CPU between sessions first, so a process's own nice
#                     or thread count barely matters) and on every process
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${GREEN_BUILD_DIR:-build-scaling}
SECS=${SCALING_SECONDS:-3}
ROUNDS=${SCALING_ROUNDS:-3}
DOC=${SCALING_DOC:-docs/benchmarks.md}
WARMUP=${SCALING_WARMUP:-0.5}
SECTION=${SCALING_SECTION:-scaling}
if [ "${SCALING_PREBUILT:-0}" != 1 ]; then
  [ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release -Dtests=false >/dev/null
  ninja -C "$BUILD" examples/http_threads tools/greenbench tools/greenrun interpose/libgreen-preload.so \
    bench/bench_scaling >/dev/null
fi
OUT="$BUILD/scaling"
mkdir -p "$OUT"
GB="$BUILD/tools/greenbench"
CPUS=$(nproc)
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
NICE=()
if [ -n "${SCALING_NICE:-}" ]; then
  NICE=(nice -n "$SCALING_NICE")
  echo "$SCALING_NICE" >/proc/self/autogroup 2>/dev/null || echo "scaling: cannot set the autogroup's nice" >&2
fi
CLIENT_CPUS=${SCALING_CLIENT_CPUS:-1}
HUBS=${SCALING_HUBS:-$(seq -s ' ' 1 "$CPUS")}
CLIENT=()
if command -v taskset >/dev/null && [ "$CPUS" -gt "$CLIENT_CPUS" ]; then
  CLIENT=(taskset -c "$((CPUS - CLIENT_CPUS))-$((CPUS - 1))")
fi
CPU_CONNS=$((2 * CPUS))
STATIC_CONNS=16

server_pid=
cleanup() {
  [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
  [ -z "${SCALING_NICE:-}" ] || echo 0 >/proc/self/autogroup 2>/dev/null || true
}
trap cleanup EXIT

# run CONFIG PATH CONNS -> prints requests/s. CONFIG: unpatched | default | N (hubs)
run() {
  local config=$1 path=$2 conns=$3 line port rps
  case $config in
    unpatched) exec 4< <(exec "${NICE[@]}" env -u GREEN_HUBS "$BUILD/examples/http_threads" 0) ;;
    default) exec 4< <(exec "${NICE[@]}" env -u GREEN_HUBS "$BUILD/tools/greenrun" -- "$BUILD/examples/http_threads" 0) ;;
    *) exec 4< <(exec "${NICE[@]}" "$BUILD/tools/greenrun" --hubs "$config" -- "$BUILD/examples/http_threads" 0) ;;
  esac
  server_pid=$!
  read -r -t 10 -u 4 line || { echo "scaling: http_threads ($config) did not start" >&2; exit 1; }
  port=${line##* }
  rps=$("${NICE[@]}" "${CLIENT[@]}" "$GB" run -q -t "$CLIENT_CPUS" -c "$conns" -d "$SECS" -w "$WARMUP" --json - "http://127.0.0.1:$port$path" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["requests_per_s"])')
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=
  exec 4<&-
  echo "$rps"
}

configs=(unpatched default $HUBS)
: >"$OUT/runs.txt"
for ((round = 1; round <= ROUNDS; round++)); do
  for route in "/cpu?us=200 $CPU_CONNS" "/hello $STATIC_CONNS"; do
    set -- $route
    for config in "${configs[@]}"; do
      rps=$(run "$config" "$1" "$2")
      echo "$round $1 $config $rps" | tee -a "$OUT/runs.txt" >&2
    done
  done
done

# Per-request costs that do not shrink with hubs: 1 hub = all on one hub,
# 2 hubs = the partner thread on the other hub.
for hubs in 1 2; do
  GREEN_HUBS=$hubs "${NICE[@]}" "$BUILD/bench/bench_scaling" --benchmark_repetitions=3 --benchmark_min_time=0.3 \
    --benchmark_display_aggregates_only=true --benchmark_format=json >"$OUT/costs-$hubs.json" 2>/dev/null
done

# The hub count the shim picks by default, from its stats line at exit; the
# server itself, refusing a port that is none, is the shortest patched run of
# a program from this build (a carried build may not suit the system's own).
default_hubs=$(env -u GREEN_HUBS GREEN_STATS=1 "$BUILD/tools/greenrun" -- "$BUILD/examples/http_threads" none 2>&1 |
  sed -n 's/.*shim active.*: hubs \([0-9]*\),.*/\1/p' || true)
python3 - "$DOC" "$OUT" "$CPUS" "$SECS" "$ROUNDS" "$CPU_CONNS" "$STATIC_CONNS" "${CLIENT[*]:-}" "$default_hubs" \
  "${SCALING_NICE:-}" "$LOAD_START" "$HUBS" "$WARMUP" "$CLIENT_CPUS" "$SECTION" <<'PY'
import json, os, statistics, subprocess, sys, time
(doc, out, cpus, secs, rounds, cpu_conns, static_conns, client, default_hubs, nice, load_start, hubs, warmup,
 client_cpus, section_name) = sys.argv[1:]
cpus = int(cpus)
hubs = [int(h) for h in hubs.split()]
runs = {}
for line in open(os.path.join(out, "runs.txt")):
    rnd, path, config, rps = line.split()
    runs.setdefault(path, {}).setdefault(config, {})[int(rnd)] = float(rps)

def ratio(path, a, b):
    r = runs[path]
    vals = [r[a][k] / r[b][k] for k in r[a] if k in r[b] and r[b][k] > 0]
    return statistics.median(vals) if vals else float("nan")

# {name: (wall ns, CPU ns of the benchmark thread)}, medians.
def costs(hubs):
    data = json.load(open(os.path.join(out, f"costs-{hubs}.json")))
    res = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") == "median":
            unit = {"ns": 1, "us": 1e3, "ms": 1e6}[b["time_unit"]]
            res[b["run_name"].split("/")[0]] = (b["real_time"] * unit, b["cpu_time"] * unit)
    return res

c1, c2 = costs(1), costs(2)
nan = (float("nan"), float("nan"))
L = []
L.append(f"<!-- BEGIN {section_name}: written by bench/scaling.sh; edit the script, not this section -->")
L.append(f"## Scaling over hubs: does the shim use every core?{'' if section_name == 'scaling' else ' (' + str(cpus) + ' CPUs)'}")
L.append("")
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
load = open("/proc/loadavg").read().split()[0]
settings = {"SCALING_NICE": nice, "SCALING_HUBS": " ".join(map(str, hubs)) if hubs != list(range(1, cpus + 1)) else "",
            "SCALING_WARMUP": warmup if warmup != "0.5" else "", "SCALING_CLIENT_CPUS": client_cpus if client_cpus != "1" else "",
            "SCALING_SECTION": section_name if section_name != "scaling" else ""}
settings["GREEN_THREAD_LOCALS"] = os.environ.get("GREEN_THREAD_LOCALS", "")
cmd = "".join(f"{k}='{v}' " for k, v in settings.items() if v) + "bash bench/scaling.sh"
L.append(f"Reproduce with `{cmd}` (commit {commit}, {time.strftime('%Y-%m-%d %H:%M')}; {cpus} CPUs, "
         f"1-minute load average {load_start} before and {load} after{'; this run at nice ' + nice + ' (its session autogroup and every process)' if nice else ''}). "
         f"`examples/http_threads` "
         f"unpatched and under `greenrun` with {', '.join(map(str, hubs))} hubs and with the default (`GREEN_HUBS=adaptive`: "
         f"{default_hubs} hub threads here, new threads on one until the balancer finds it saturated while a CPU "
         f"idles, then moved), "
         f"loaded by `greenbench run` with {client_cpus} thread{'s' if client_cpus != '1' else ''}{' pinned with `' + client + '`' if client else ''}: "
         f"`/cpu?us=200` (200 µs of the handler thread's CPU time per request) over {cpu_conns} keep-alive "
         f"connections, `/hello` over {static_conns}; {secs} s measured per run after {warmup} s warm-up, "
         f"{rounds} rounds, configurations alternating within each round. Each ratio is taken within one round, "
         f"the table shows the median over rounds; req/s are medians too, for scale only.")
L.append("")
configs = ["unpatched", "default"] + [str(n) for n in hubs]
L.append("| route | server | req/s | / 1 hub | / unpatched |")
L.append("| --- | --- | ---: | ---: | ---: |")
for path in runs:
    r = runs[path]
    for c in configs:
        name = (f"{c} hub{'s' if c != '1' else ''}" if c.isdigit() else
                f"default ({default_hubs} hub threads, adaptive)" if c == "default" else c)
        vs_one = "" if c in ("1", "unpatched") else f"{ratio(path, c, '1'):.2f}x"
        vs_unpatched = "" if c == "unpatched" else f"{ratio(path, c, 'unpatched'):.2f}x"
        L.append(f"| `{path}` | {name} | {statistics.median(r[c].values()):,.0f} | {vs_one} | {vs_unpatched} |")
L.append("")
L.append("Per-request costs that more hubs do not divide (`bench/bench_scaling.cpp`, shim linked in, median of 3; "
         "GREEN_HUBS=1: both parties on one hub; GREEN_HUBS=2: the partner thread on the other hub). Wall time "
         "includes waiting for the kernel to run the other hub's thread, which on a loaded machine dominates; "
         "CPU time is the calling thread's (hub 0's) own, i.e. what the serial part actually occupies:")
L.append("")
L.append("| benchmark | GREEN_HUBS=1 wall | CPU | GREEN_HUBS=2 wall | CPU |")
L.append("| --- | ---: | ---: | ---: | ---: |")
for name in ["BM_AcceptConnect", "BM_ThreadCreateJoin", "BM_CondvarPingPong", "BM_MutexHandoff"]:
    (w1, u1), (w2, u2) = c1.get(name, nan), c2.get(name, nan)
    L.append(f"| `{name}` | {w1:,.0f} ns | {u1:,.0f} ns | {w2:,.0f} ns | {u2:,.0f} ns |")
L.append("")

# The model. p: server time per request on one hub, measured (1 / req/s at
# 1 hub, the server saturated). s: time per request that stays serial.
p_cpu = 1e9 / statistics.median(runs["/cpu?us=200"]["1"].values())
p_hello = 1e9 / statistics.median(runs["/hello"]["1"].values())
accept = c2["BM_AcceptConnect"][1]
create = c1["BM_ThreadCreateJoin"][1]  # the fiber's creation, on the acceptor's hub
wake = c2["BM_CondvarPingPong"][1] / 2
handoff = c2["BM_MutexHandoff"][1]
def speedup(p, s, n):
    return (p + s) / (p / n + s)
rows = [
    ("`/cpu?us=200`, keep-alive", p_cpu, 0.0, "none per request: each connection's fiber waits on its own hub's epoll"),
    ("`/cpu?us=200`, a connection per request", p_cpu, accept + create + wake,
     "on the one accepting hub: accept, create the thread-fiber, wake the hub it is placed on"),
    ("`/hello`, a connection per request", p_hello, accept + create + wake, "the same"),
    ("`/counter?us=50` (one `std::mutex` held 50 µs)", p_hello + 50e3, 50e3 + handoff,
     "the critical section + a cross-hub hand-off"),
]
L.append("**Model (Amdahl).** With `p` the server time per request on one hub and `s` the part of it that "
         "stays serial however many hubs run, N hubs give at most `(p + s) / (p / N + s)` times one hub. "
         f"Measured here: `p` = {p_cpu / 1e3:,.1f} µs for `/cpu?us=200` and {p_hello / 1e3:,.1f} µs for `/hello` "
         f"(1 / req/s at 1 hub); the serial costs are CPU times from the table above: accept at GREEN_HUBS=2 "
         f"(with the client's connect and both closes, an over-estimate) {accept:,.0f} ns, creating a thread-fiber "
         f"(create + join on one hub) {create:,.0f} ns, one cross-hub wake {wake:,.0f} ns (half the cross-hub "
         f"ping-pong), contended lock across hubs {handoff:,.0f} ns. The model ignores what the kernel shares "
         "(the listen socket's queue, loopback, memory bandwidth) and assumes the clients are elsewhere, so it is "
         "optimistic for many cores; the over-estimated accept makes the connection-per-request rows pessimistic. "
         + ("A machine with more cores was not available to check it (no device machine was lent to this task)."
            if cpus <= 2 else f"The measured rows above check it on {cpus} CPUs."))
L.append("")
L.append("| workload | serial `s` per request | p | 2 hubs | 16 hubs | 64 hubs |")
L.append("| --- | --- | ---: | ---: | ---: | ---: |")
for name, p, s, what in rows:
    L.append(f"| {name} | {s / 1e3:,.2f} µs ({what}) | {p / 1e3:,.1f} µs | {speedup(p, s, 2):.2f}x | "
             f"{speedup(p, s, 16):.1f}x | {speedup(p, s, 64):.1f}x |")
L.append(f"<!-- END {section_name} -->")
section = "\n".join(L) + "\n"
sys.path.insert(0, "bench")
from doc_section import write_section
write_section(doc, f"<!-- BEGIN {section_name}:", f"<!-- END {section_name} -->", section)
print(section)
PY
