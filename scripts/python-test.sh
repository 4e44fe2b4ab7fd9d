#!/usr/bin/env bash
# The Python client's tests: sets up .venv (scripts/python-setup.sh), then runs pytest on
# clients/python/tests. The end-to-end tests start the service from src/main.ts with the
# repository's Node (node_modules/.bin/node, installed by scripts/bootstrap.sh when missing)
# and make a TLS certificate with openssl. Extra arguments go to pytest (e.g. -k quick_start).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x node_modules/.bin/node ]]; then
  scripts/bootstrap.sh
fi
scripts/python-setup.sh
exec .venv/bin/python -m pytest clients/python/tests -q "$@"
