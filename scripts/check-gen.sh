#!/usr/bin/env bash
# Fails when proto/ or gen/ differ from what the vendored npm protos and `buf generate` give:
# nobody edits gen/ by hand, and nobody forgets to regenerate.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/vendor-protos.sh
node_modules/.bin/buf lint
node_modules/.bin/buf generate
if [[ -n "$(git status --porcelain -- proto gen)" ]]; then
  echo "check-gen: proto/ or gen/ is not what buf generates; run 'npm run generate' and commit:" >&2
  git status --porcelain -- proto gen >&2
  git --no-pager diff --stat -- proto gen >&2
  exit 1
fi
echo "check-gen: gen/ matches proto/"
if [[ -x .venv/bin/python ]]; then
  PYTHON=.venv/bin/python bash clients/python/scripts/generate.sh --check
fi
