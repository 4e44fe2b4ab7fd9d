#!/usr/bin/env bash
# Installs redis-server from the Debian packages when it is missing. Silent when it is already
# there. Tests and scripts/dev-up.sh start their own redis-server processes on their own ports,
# so the packaged system service is kept from starting (and disabled if systemd runs), leaving
# port 6379 free.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-redis: redis-server is missing; run this script as root to install it" >&2
    exit 1
  fi
  sudo=(sudo)
fi

# Debian's maintainer scripts start services unless policy-rc.d says no (exit 101). Only add
# our own policy for the duration of the install, and only when the machine has none.
policy=/usr/sbin/policy-rc.d
added_policy=false
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 755 "$policy"
  added_policy=true
fi
cleanup() { if [[ "$added_policy" == true ]]; then "${sudo[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

echo "install-redis: installing redis-server from the Debian packages" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends redis-server >/dev/null

if [[ -d /run/systemd/system ]]; then
  "${sudo[@]}" systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
echo "install-redis: installed $(redis-server --version | cut -d' ' -f1-3)" >&2
