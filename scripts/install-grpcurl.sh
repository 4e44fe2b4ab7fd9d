#!/usr/bin/env bash
# Installs grpcurl into .cache/bin (ignored by git) for the reflection tests. Idempotent: does
# nothing when the binary is already there. Needs Go; fetches through the Go module proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
bin_dir="$PWD/.cache/bin"
if [[ -x "$bin_dir/grpcurl" ]]; then
  exit 0
fi
go_bin="$(command -v go || true)"
if [[ -z "$go_bin" && -x /usr/local/go/bin/go ]]; then
  go_bin=/usr/local/go/bin/go
fi
if [[ -z "$go_bin" ]]; then
  echo "install-grpcurl: Go is not installed" >&2
  exit 1
fi
mkdir -p "$bin_dir"
GOBIN="$bin_dir" "$go_bin" install github.com/fullstorydev/grpcurl/cmd/grpcurl@"${GRPCURL_VERSION:-v1.9.4}"
