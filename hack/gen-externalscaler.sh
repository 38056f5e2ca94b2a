#!/usr/bin/env bash
# Regenerates the Python stubs of KEDA's ExternalScaler gRPC service (the
# operator serves it for fast wakes) from externalscaler.proto in the pinned
# KEDA module. The stubs are checked in; run this after bumping KEDA_VERSION.
# Needs grpcio-tools (in the test extra: .venv has it).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/versions.env
source "$root/hack/versions.env"
out="$root/operator/usersession_operator/externalscaler"

dir=$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" |
  sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
mkdir -p "$out"
cp "$dir/pkg/scalers/externalscaler/externalscaler.proto" "$out/externalscaler.proto"
chmod u+w "$out/externalscaler.proto"
# Generated from operator/ as the include root, so the stubs import each other
# as usersession_operator.externalscaler.* rather than as top-level modules.
cd "$root/operator"
"$root/.venv/bin/python" -m grpc_tools.protoc -I . \
  --python_out=. --pyi_out=. --grpc_python_out=. \
  usersession_operator/externalscaler/externalscaler.proto
echo "stubs regenerated in $out from KEDA $KEDA_VERSION" >&2
