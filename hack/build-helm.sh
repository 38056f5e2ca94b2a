#!/usr/bin/env bash
# The pinned helm (hack/versions.env), built from the Go module proxy and cached.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.env
source "$here/versions.env"
exec "$here/go-tool.sh" helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" \
  "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
