#!/usr/bin/env bash
# Waits until the scratch PostgreSQL serves no client connection but this
# one, so that a server measured next does not pay for the last one: after a
# server with a thread per connection is stopped, up to a thousand backends
# live on, row-lock waiters among them, until each notices its client is
# gone. Measured here: a fresh server's first database connections then
# waited 28 s unpatched, and over greenbench's 30 s settle limit patched,
# which read as a server that stopped answering.
#
# Usage (under scripts/pg_scratch.sh, which sets PG*): bench/pg_quiesce.sh
#   PG_QUIESCE_TIMEOUT  seconds to wait at most (default 120); exit 1 after
set -uo pipefail
limit=${PG_QUIESCE_TIMEOUT:-120}
start=$(date +%s.%N)
count() {
  "${GREEN_PG_BIN:+$GREEN_PG_BIN/}psql" -qAt -c \
    "select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()" 2>/dev/null
}
first=$(count)
while :; do
  n=$(count)
  waited=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
  if [ "${n:-x}" = 0 ]; then
    [ "${first:-0}" = 0 ] || echo "pg_quiesce: waited $waited s for ${first} backends of the last server to end" >&2
    exit 0
  fi
  if awk -v w="$waited" -v l="$limit" 'BEGIN {exit !(w >= l)}'; then
    echo "pg_quiesce: ${n:-?} client backends still there after $limit s" >&2
    exit 1
  fi
  sleep 0.2
done
