#!/usr/bin/env bash
# The pinned actionlint (hack/versions.env), to lint the GitHub workflows.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.env
source "$here/versions.env"
exec "$here/go-tool.sh" actionlint github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION"
