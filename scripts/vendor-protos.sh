#!/usr/bin/env bash
# Copies the gRPC reflection and health protos from their npm packages into proto/grpc/,
# under their canonical file names, so that buf generates them with ours and reflection
# serves them under the names other servers use. Never fetched from the network.
set -euo pipefail
cd "$(dirname "$0")/.."
src_reflection=node_modules/@grpc/reflection/build/proto/grpc/reflection
src_health=node_modules/grpc-health-check/proto/health/v1/health.proto
mkdir -p proto/grpc/reflection/v1 proto/grpc/reflection/v1alpha proto/grpc/health/v1
cp "$src_reflection/v1/reflection.proto" proto/grpc/reflection/v1/reflection.proto
cp "$src_reflection/v1alpha/reflection.proto" proto/grpc/reflection/v1alpha/reflection.proto
cp "$src_health" proto/grpc/health/v1/health.proto
