#!/usr/bin/env bash
# `npm test`: every check, in order of cost, then one summary line "N passed, N failed".
# Needs what `scripts/bootstrap.sh --test` installs. Each stage runs even if an earlier one
# failed, so one run shows every problem; the exit code is non-zero if any stage failed.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-results
failed_stages=()

stage() {
  local name=$1
  shift
  printf '\n==> %s\n' "$name"
  if ! "$@"; then failed_stages+=("$name"); fi
}

stage "generated code matches proto/" bash scripts/check-gen.sh
stage "typecheck" node_modules/.bin/tsc -p tsconfig.json
stage "lint" node_modules/.bin/eslint --max-warnings 0 .
stage "vitest" node_modules/.bin/vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json
if [[ -x .venv/bin/python ]]; then
  stage "python client (pytest)" .venv/bin/python -m pytest clients/python/tests -q --junitxml=test-results/pytest.xml
else
  echo "python venv missing: run scripts/bootstrap.sh --test" >&2
  failed_stages+=("python client (no venv)")
fi

printf '\n'
node scripts/test-summary.ts "${failed_stages[@]}"
