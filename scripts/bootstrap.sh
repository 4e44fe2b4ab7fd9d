#!/usr/bin/env bash
# Installs what the project needs, idempotently and fast when nothing changed.
#   scripts/bootstrap.sh          npm packages (Node 24 comes from the `node` npm package)
#   scripts/bootstrap.sh --test   also everything the test suite needs: Redis, grpcurl, daprd
#                                 (built once from its Go module, cached in .cache/), Python venv
# Progress goes to stderr, one "==>" line per step.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '==> %s\n' "$*" >&2; }

lock_hash=$(sha256sum package-lock.json | cut -c1-16)
if [[ ! -x node_modules/.bin/node || "$(cat node_modules/.bootstrap-stamp 2>/dev/null)" != "$lock_hash" ]]; then
  step "npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.bootstrap-stamp
fi
step "node $(node_modules/.bin/node --version) from node_modules"

if [[ "${1:-}" != "--test" ]]; then
  exit 0
fi

missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if ((${#missing[@]})); then
  step "Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

step "redis-server"
scripts/install-redis.sh

step "chromium (Debian package, for the web console's browser tests)"
scripts/install-chromium.sh

step "grpcurl (Go module proxy, cached in .cache/bin)"
scripts/install-grpcurl.sh >/dev/null

step "daprd (built from its Go module, cached in .cache/daprd)"
scripts/build-daprd.sh >/dev/null

step "Python client virtual environment (.venv)"
scripts/python-setup.sh
