#!/usr/bin/env bash
# Runs the service on a fresh machine: installs the npm packages (Node 24 included) if needed,
# then starts it. Arguments go to the service: scripts/start.sh --port 5002 --log-level debug
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec npm start --silent -- "$@"
