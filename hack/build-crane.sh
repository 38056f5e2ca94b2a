#!/usr/bin/env bash
# The pinned crane (hack/versions.env): `crane registry serve` is the OCI
# registry the release-path tests push the chart and the image to, on loopback.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.env
source "$here/versions.env"
exec "$here/go-tool.sh" crane github.com/google/go-containerregistry/cmd/crane "$CRANE_VERSION"
