#!/usr/bin/env bash
# ARCHITECTURE.md's table of hooked calls ("## Every hooked call") against
# what libgreen-preload.so exports: every C symbol the shim exports is a hook
# and must be named in the table's first column, and every name there must
# be exported (a removed hook leaves no stale row).
# Usage: hook_table.sh SHIM ARCHITECTURE.md
set -euo pipefail
shim=$1
doc=$2

exported=$(nm -D --defined-only "$shim" | awk '$2 ~ /^[TWi]$/ && $3 !~ /^_Z/ { sub(/@.*/, "", $3); print $3 }' | sort -u)
listed=$(awk '/^## Every hooked call/ { on = 1; next }
              on && /^#/ { exit }
              on && /^\|/ { split($0, cell, "|"); print cell[2] }' "$doc" |
         grep -o '`[^`]*`' | tr -d '`' | sort -u || true)

if [ -z "$exported" ]; then
    echo "no exported C symbols found in $shim" >&2
    exit 1
fi
if [ -z "$listed" ]; then
    echo "no table under '## Every hooked call' in $doc" >&2
    exit 1
fi
missing=$(comm -23 <(echo "$exported") <(echo "$listed"))
stale=$(comm -13 <(echo "$exported") <(echo "$listed"))
status=0
if [ -n "$missing" ]; then
    echo "exported by the shim but missing from the table in $doc:" $missing >&2
    status=1
fi
if [ -n "$stale" ]; then
    echo "in the table in $doc but not exported by the shim:" $stale >&2
    status=1
fi
[ $status -eq 0 ] && echo "$(echo "$exported" | wc -l) hooked symbols, each in the table"
exit $status
