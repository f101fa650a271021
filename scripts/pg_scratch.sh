#!/usr/bin/env bash
# A throw-away PostgreSQL for the database scenario: initdb into a fresh
# temporary folder (as an unprivileged user: PostgreSQL refuses to run as
# root), listen on 127.0.0.1 on a free port and on a private unix-socket
# folder, load the tables examples/pg_threads serves, run the command given,
# then stop the server and remove everything (also when interrupted).
#
#   scripts/pg_scratch.sh -- COMMAND ARGS...
#
# COMMAND sees PGHOST=127.0.0.1 PGPORT PGUSER=postgres PGDATABASE=green
# (so libpq, psql and pgbench find it without options), GREEN_PG_SOCKET_DIR
# (the unix-socket folder) and GREEN_PG_BIN (PostgreSQL's programs). The exit
# status is COMMAND's. When PostgreSQL is not installed, COMMAND still runs,
# with GREEN_PG_UNAVAILABLE saying why, so that a test can skip visibly.
#
# Tables: items(id, name, value) with ids 1..PG_ITEMS (name 'item-ID', value
# ID*10) and counters(id, value) with ids 1..100, all values 0.
# Durability is off (fsync, synchronous_commit): the data is thrown away, and
# a shared disk must not decide the measurements.
#   PG_ITEMS            rows in items (default 10000)
#   PG_OWN_SESSION      1 (default): PostgreSQL in a session of its own, as pg_ctl
#                       starts it; 0: in the caller's session
#   PG_MAX_CONNECTIONS  max_connections (default 2200: one per thread at 1000 clients,
#                       twice over, because the backends of a load level that just
#                       ended are still exiting when the next level connects)
#   PG_CPUS             CPUs to pin PostgreSQL to (taskset -c list; default: any)
#   GREEN_PG_BIN_DIR    PostgreSQL's bin folder (default: the newest
#                       /usr/lib/postgresql/*/bin; a relocated copy works, as
#                       bench/carry_pg.sh makes one for another machine)
set -euo pipefail
[ "${1:-}" = "--" ] && shift
if [ $# -eq 0 ]; then
  echo "usage: $0 -- COMMAND ARGS..." >&2
  exit 2
fi

PG_BIN=${GREEN_PG_BIN_DIR:-}
if [ -z "$PG_BIN" ]; then
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && PG_BIN=$d
  done
fi
if [ -z "$PG_BIN" ]; then
  export GREEN_PG_UNAVAILABLE="PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; bash scripts/deps.sh installs it)"
  exec "$@"
fi

as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  as_owner=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)  # execs: no process in between
fi
# PostgreSQL in its own session, as pg_ctl (and so pg_ctlcluster and the
# Debian service) starts it: with autogroup scheduling the kernel shares CPU
# between sessions before threads, so the database's backends and the
# program under test are not one pool of threads competing one by one.
# PG_OWN_SESSION=0 keeps it in the caller's session.
own_session=()
[ "${PG_OWN_SESSION:-1}" = 1 ] && own_session=(setsid)
pinned=()
[ -z "${PG_CPUS:-}" ] || pinned=(taskset -c "$PG_CPUS")
work=$(mktemp -d /tmp/green-pg.XXXXXX)
chmod 755 "$work"
pg_pid=
cleanup() {
  if [ -n "$pg_pid" ]; then
    kill -INT "$pg_pid" 2>/dev/null || true   # fast shutdown: ends the backends
    for _ in $(seq 100); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pg_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

mkdir "$work/data" "$work/sock"
[ ${#as_owner[@]} -eq 0 ] || chown nobody "$work/data" "$work/sock"
"${as_owner[@]}" "$PG_BIN/initdb" -D "$work/data" -U postgres --auth=trust -E UTF8 --no-locale \
  >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; exit 1; }

# A free port: bind port 0, read it, release it; PostgreSQL may lose the race
# to another program, so try a few.
started=
for _ in 1 2 3 4 5; do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "${own_session[@]}" "${pinned[@]}" "${as_owner[@]}" "$PG_BIN/postgres" -D "$work/data" -h 127.0.0.1 -p "$port" -k "$work/sock" \
    -c max_connections="${PG_MAX_CONNECTIONS:-2200}" -c fsync=off -c synchronous_commit=off \
    -c full_page_writes=off -c shared_buffers=128MB -c log_min_messages=warning \
    >"$work/postgres.log" 2>&1 &
  pg_pid=$!
  for _ in $(seq 300); do
    if "$PG_BIN/pg_isready" -q -h "$work/sock" -p "$port"; then started=1; break; fi
    kill -0 "$pg_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$started" ] && break
  kill -KILL "$pg_pid" 2>/dev/null || true
  wait "$pg_pid" 2>/dev/null || true
  pg_pid=
done
# The caller's session may run at another nice level (bench/scaling.sh's
# SCALING_NICE); the database's session runs at the same one.
if [ -n "$started" ] && [ ${#own_session[@]} -gt 0 ]; then
  caller_nice=$(sed -n 's/.* nice //p' /proc/self/autogroup 2>/dev/null || true)
  [ -z "$caller_nice" ] || echo "$caller_nice" >"/proc/$pg_pid/autogroup" 2>/dev/null || true
fi
if [ -z "$started" ]; then
  echo "pg_scratch: PostgreSQL did not start:" >&2
  cat "$work/postgres.log" >&2
  exit 1
fi

export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=green
export GREEN_PG_SOCKET_DIR=$work/sock GREEN_PG_BIN=$PG_BIN
unset PGPASSWORD PGSERVICE PGSSLMODE PGOPTIONS
"$PG_BIN/psql" -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE green" >/dev/null
"$PG_BIN/psql" -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, value bigint NOT NULL);
INSERT INTO items SELECT i, 'item-' || i, i * 10 FROM generate_series(1, ${PG_ITEMS:-10000}) AS i;
CREATE TABLE counters (id int PRIMARY KEY, value bigint NOT NULL);
INSERT INTO counters SELECT i, 0 FROM generate_series(1, 100) AS i;
VACUUM ANALYZE;
SQL

# Not exec: the trap must still remove the database when COMMAND ends.
set +e
"$@" <&0 &
child=$!
trap 'kill -TERM $child 2>/dev/null; wait $child; exit 143' TERM
trap 'kill -INT $child 2>/dev/null; wait $child; exit 130' INT
wait "$child"
status=$?
exit "$status"
