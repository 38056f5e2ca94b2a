#!/usr/bin/env bash
# Regenerates the Python message classes of KEDA's ExternalScaler gRPC service
# (the operator serves it for fast wakes) from externalscaler.proto in the
# pinned KEDA module. Only the messages are generated and checked in; the
# service's four methods are registered by hand in wake/pushscaler.py, and the
# .proto stays in KEDA's module. Run this after bumping KEDA_VERSION. Needs
# grpcio-tools (in the test extra: .venv has it).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/versions.env
source "$root/hack/versions.env"
out="$root/operator/usersession_operator/wake/externalscaler"

dir=$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" |
  sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
proto_dir="$dir/pkg/scalers/externalscaler"
"$root/.venv/bin/python" -m grpc_tools.protoc -I "$proto_dir" --python_out="$out" \
  "$proto_dir/externalscaler.proto"
echo "messages regenerated in $out from KEDA $KEDA_VERSION" >&2
