#!/usr/bin/env bash
# The main job. With a cluster configured (KUBECONFIG, ~/.kube/config or
# in-cluster) it runs the operator against it; arguments go to
# `usersession-operator run` (see --help). With none it starts the whole product
# on loopback: control plane, Redis, KEDA, the operator, the session API and a
# reference worker per Running session pod (python -m usersession_localstack).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
"$root/hack/setup.sh"
if [[ -n "${KUBECONFIG:-}" || -f "$HOME/.kube/config" || -n "${KUBERNETES_SERVICE_HOST:-}" ]]; then
  exec "$root/.venv/bin/usersession-operator" run "$@"
fi
exec "$root/.venv/bin/python" -m usersession_localstack "$@"
