#!/usr/bin/env bash
# Installs the Debian 12 packages green needs, only those that are missing.
# Run by demo.sh and test.sh; uses sudo when not run as root. Extra package
# names given as arguments are installed too (bench/scenarios.sh adds wrk).
set -euo pipefail
GREEN_PACKAGES=(g++ meson ninja-build pkg-config libev-dev libboost-context-dev libgtest-dev libgmock-dev
                libbenchmark-dev curl python3 procps libcli11-dev libfmt-dev nlohmann-json3-dev pigz xz-utils
                postgresql libpq-dev libjemalloc2 redis-server redis-tools memcached nginx-light siege openssh-client git libdw-dev ccache "$@")
missing=()
for p in "${GREEN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "green: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
