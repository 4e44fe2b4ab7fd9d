#!/usr/bin/env bash
# Runs the whole stack for development in the foreground: Redis, a daprd sidecar (app id
# websocketmanager) with the components in dapr/components, and the service publishing through
# it. Ctrl-C stops all three; if any of them exits, the others are stopped too.
#
# Ports (fixed for convenience, override with the environment):
#   WSM_DEV_REDIS_PORT  Redis                     default 6390
#   DAPR_HTTP_PORT      daprd HTTP API            default 3500
#   DAPR_GRPC_PORT      daprd gRPC API            default 50001
#   WSM_PORT            the service (its default) default 5002
# Extra arguments are passed to the service: scripts/dev-up.sh --log-level debug
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

redis_port="${WSM_DEV_REDIS_PORT:-6390}"
dapr_http_port="${DAPR_HTTP_PORT:-3500}"
dapr_grpc_port="${DAPR_GRPC_PORT:-50001}"
data_dir="$root/.cache/dev-redis"

"$root/scripts/install-redis.sh"
daprd="$("$root/scripts/build-daprd.sh")"
mkdir -p "$data_dir"

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

prefixed() { sed -u "s/^/[$1] /"; }

redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$data_dir" --save 60 1 --appendonly no \
  > >(prefixed redis) 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  if redis-cli -p "$redis_port" ping >/dev/null 2>&1; then break; fi
  if ! kill -0 "${pids[0]}" 2>/dev/null; then echo "dev-up: redis-server exited" >&2; exit 1; fi
  sleep 0.1
done

WSM_REDIS_HOST="127.0.0.1:$redis_port" "$daprd" \
  --app-id websocketmanager \
  --mode standalone \
  --dapr-http-port "$dapr_http_port" \
  --dapr-grpc-port "$dapr_grpc_port" \
  --dapr-listen-addresses 127.0.0.1 \
  --dapr-internal-grpc-listen-address 127.0.0.1 \
  --enable-metrics=false \
  --disable-builtin-k8s-secret-store \
  --resources-path "$root/dapr/components" \
  > >(prefixed daprd) 2>&1 &
pids+=($!)

# The service does not wait for its sidecar (readiness reports it instead), so it starts now.
DAPR_HTTP_PORT="$dapr_http_port" npm start --silent -- "$@" &
pids+=($!)

echo "dev-up: redis on $redis_port, daprd HTTP on $dapr_http_port, service starting; Ctrl-C stops all" >&2
wait -n || true
echo "dev-up: a process exited, stopping the rest" >&2
