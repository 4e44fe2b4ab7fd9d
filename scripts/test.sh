#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs everything it needs (see bootstrap.sh),
# then runs `npm test` (generated code check, typecheck, lint, vitest, Python tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
exec npm test
