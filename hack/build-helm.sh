#!/usr/bin/env bash
# Provides the pinned helm (hack/versions.env), built from the Go module proxy
# and cached by version outside the repository. Prints the binary's path.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.env
source "$here/versions.env"
cache=${USERSESSION_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/usersession-operator}
dest="$cache/helm/$HELM_VERSION"

if [[ ! -x "$dest/helm" ]]; then
  printf '[build-helm %(%H:%M:%S)T] building helm %s (first run only)\n' -1 "$HELM_VERSION" >&2
  mkdir -p "$dest"
  GOBIN="$dest" GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOTOOLCHAIN=local go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi
echo "$dest/helm"
