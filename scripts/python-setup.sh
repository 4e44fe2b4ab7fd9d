#!/usr/bin/env bash
# Creates (or reuses) the Python virtual environment .venv at the repository root and installs
# the Python client (clients/python) into it in editable mode with its test extras.
# Idempotent: does nothing when the environment already matches clients/python/pyproject.toml.
# PYTHON selects the interpreter the venv is made from (default: python3, at least 3.10).
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "python-setup.sh: $python must be Python 3.10 or newer" >&2
  exit 1
fi

stamp_file=.venv/.python-client-stamp
stamp="$("$python" -c 'import sys; print(sys.version)' | head -1) $(sha256sum clients/python/pyproject.toml | cut -c1-16)"
if [[ -x .venv/bin/python && "$(cat "$stamp_file" 2>/dev/null)" == "$stamp" ]] \
  && .venv/bin/python -c 'import virtufin.websocketmanager, pytest, grpc_tools' 2>/dev/null; then
  exit 0
fi

if [[ ! -x .venv/bin/python ]]; then
  "$python" -m venv .venv
fi
# The build backend is chatty even with --quiet: its output is shown only when pip fails.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip \
  && .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "clients/python[test]"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "python-setup.sh: installing the Python client failed" >&2
  exit 1
fi
echo "$stamp" > "$stamp_file"
