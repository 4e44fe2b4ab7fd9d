#!/usr/bin/env bash
# Builds the trimmed daprd in tools/daprd (Dapr's runtime with only the components we use)
# into .cache/daprd/<dapr version>/daprd and prints that path on stdout. Everything else
# (progress, errors) goes to stderr so callers can capture the path.
#
# A binary built from the same tools/daprd sources is reused at once. The first build
# compiles several thousand packages; on two cores that takes many minutes, so progress
# is reported as it goes. Concurrent callers (parallel test files) wait on a lock
# instead of building twice.
#
# Environment: GO (go binary to use; default: `go` on PATH, else /usr/local/go/bin/go).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/tools/daprd"

go_bin="${GO:-}"
if [[ -z "$go_bin" ]]; then
  if command -v go >/dev/null 2>&1; then go_bin="$(command -v go)"; else go_bin=/usr/local/go/bin/go; fi
fi
if [[ ! -x "$go_bin" ]]; then
  echo "build-daprd: no Go toolchain found (set GO=/path/to/go)" >&2
  exit 1
fi

version="$(awk '$1 == "github.com/dapr/dapr" { sub(/^v/, "", $2); print $2; exit }' "$src/go.mod")"
if [[ -z "$version" ]]; then
  echo "build-daprd: cannot find the github.com/dapr/dapr requirement in $src/go.mod" >&2
  exit 1
fi

out_dir="$root/.cache/daprd/$version"
out="$out_dir/daprd"
# The stamp ties the cached binary to the exact sources it was built from, so editing
# tools/daprd invalidates it while an unchanged checkout reuses it instantly.
stamp="$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)"

is_fresh() { [[ -x "$out" && "$(cat "$out.stamp" 2>/dev/null)" == "$stamp" ]]; }

if is_fresh; then
  echo "$out"
  exit 0
fi

mkdir -p "$out_dir"
exec 9>"$out_dir/.lock"
if ! flock -n 9; then
  echo "build-daprd: another build of daprd $version is running, waiting for it" >&2
  flock 9
fi
if is_fresh; then
  echo "$out"
  exit 0
fi

cd "$src"
export CGO_ENABLED=0
echo "build-daprd: resolving dependencies of daprd $version (first run downloads modules)" >&2
total="$("$go_bin" list -deps . | wc -l)"
echo "build-daprd: compiling up to $total packages with $("$go_bin" env GOVERSION); cached packages are skipped" >&2

tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
started=$SECONDS
# `go build -v` names each package as it is compiled; turn that into a progress line
# every 50 packages, or sooner when 20 s have passed, so a slow cold build is visibly alive.
report_progress() {
  local line n=0 last=$SECONDS
  while IFS= read -r line; do
    if [[ "$line" =~ ^[A-Za-z0-9._~/-]+$ ]]; then
      n=$((n + 1))
      if ((n % 50 == 0 || SECONDS - last >= 20)); then
        echo "build-daprd: $n/$total packages compiled ($((SECONDS - started))s), now $line" >&2
        last=$SECONDS
      fi
    else
      echo "$line" >&2
    fi
  done
  echo "build-daprd: $n packages compiled" >&2
}
set +e
"$go_bin" build -v -trimpath -buildvcs=false \
  -ldflags "-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=$version" \
  -o "$tmp" . 2>&1 | report_progress
status=("${PIPESTATUS[@]}")
set -e
if [[ "${status[0]}" -ne 0 ]]; then
  echo "build-daprd: go build failed (exit ${status[0]})" >&2
  exit "${status[0]}"
fi

mv -f "$tmp" "$out"
echo "$stamp" >"$out.stamp"
echo "build-daprd: built $out in $((SECONDS - started))s" >&2
echo "$out"
