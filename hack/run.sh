#!/usr/bin/env bash
# The main job.
#   hack/run.sh [args]            the whole product on loopback: control plane,
#                                 Redis, KEDA, the operator, the session API and a
#                                 reference worker per Running session pod
#                                 (python -m usersession_localstack). A kubeconfig
#                                 on the machine is never used.
#   hack/run.sh --cluster [args]  the operator against the cluster KUBECONFIG,
#                                 ~/.kube/config or the in-cluster config names;
#                                 args go to `usersession-operator run` (--help).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
"$root/hack/setup.sh"
if [[ "${1:-}" == "--cluster" ]]; then
  shift
  exec "$root/.venv/bin/usersession-operator" run "$@"
fi
exec "$root/.venv/bin/python" -m usersession_localstack "$@"
