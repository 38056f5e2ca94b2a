#!/usr/bin/env bash
# Runs the operator. With a KUBECONFIG (or ~/.kube/config) it runs against that
# cluster; with none it starts a local control plane and Redis first.
# Arguments go to `usersession-operator run` (see --help).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
"$root/hack/setup.sh"
exec "$root/.venv/bin/usersession-operator" run "$@"
