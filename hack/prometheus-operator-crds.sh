#!/usr/bin/env bash
# The Prometheus Operator's CRDs at the pinned PROMETHEUS_OPERATOR_VERSION
# (hack/versions.env), for the chart tests' server-side dry run of the
# PrometheusRule and ServiceMonitor the chart can render. They come from the
# github.com/prometheus-operator/prometheus-operator module on the Go module
# proxy (its example/prometheus-operator-crd/ directory); Go's module cache
# keeps them by version. Prints that directory on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.env
source "$here/versions.env"

module=github.com/prometheus-operator/prometheus-operator
command -v go >/dev/null || { echo "go is required to fetch $module's CRDs" >&2; exit 1; }
# Outside any module, so the repository's (absent) go.mod plays no part.
info=$(cd / && GOFLAGS=-mod=mod go mod download -json "$module@$PROMETHEUS_OPERATOR_VERSION")
dir=$(sed -n 's/.*"Dir": "\(.*\)".*/\1/p' <<<"$info")
crds="$dir/example/prometheus-operator-crd"
[[ -f "$crds/monitoring.coreos.com_prometheusrules.yaml" ]] || {
  echo "no PrometheusRule CRD under $crds" >&2
  exit 1
}
echo "$crds"
