#!/usr/bin/env bash
# End to end on a real cluster, for machines with Docker and internet access:
# kind + KEDA (its Helm chart) + Redis with a password + this operator (its
# image and chart). Pushes a message and checks the session's pod goes
# 0 -> 1 -> 0 while the UserSession status follows.
#
# Not run on the project's CI machines (no Docker engine there); linted there.
#   hack/kind-e2e.sh            create, test, delete the cluster
#   KEEP_CLUSTER=1 hack/kind-e2e.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/versions.env
source "$root/hack/versions.env"
cluster=${KIND_CLUSTER:-usersession-e2e}
image=usersession-operator:e2e
# KEDA's chart is versioned with KEDA; the same release whose CRDs the tests use.
keda_version=${KEDA_CHART_VERSION:-${KEDA_VERSION#v}}
ns=sessions

log() { printf '[kind-e2e %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
fail() { log "FAILED: $*"; kubectl get usersessions,deploy,scaledobjects,pods -A >&2 || true; exit 1; }

cleanup() {
  if [[ -z "${KEEP_CLUSTER:-}" ]]; then kind delete cluster --name "$cluster" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# wait_for DESCRIPTION SECONDS COMMAND...: retry COMMAND until it succeeds.
wait_for() {
  local what=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after ${seconds}s waiting for $what"
    sleep 3
  done
  log "ok: $what"
}

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { log "$tool is required"; exit 1; }
done

# The Kubernetes version the rest of the tests run, the one the chart claims.
node_image=${KIND_NODE_IMAGE:-kindest/node:$K8S_VERSION}
log "creating kind cluster $cluster ($node_image)"
kind create cluster --name "$cluster" --image "$node_image" --wait 120s

log "installing KEDA $keda_version from its Helm chart"
helm repo add kedacore https://kedacore.github.io/charts >/dev/null
helm repo update kedacore >/dev/null
helm install keda kedacore/keda --version "$keda_version" --namespace keda --create-namespace --wait

log "building and loading the operator image"
docker build -t "$image" "$root"
kind load docker-image "$image" --name "$cluster"

log "starting Redis with a password in namespace $ns"
password=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
kubectl create namespace "$ns"
kubectl -n "$ns" create secret generic redis-auth --from-literal=password="$password"
kubectl -n "$ns" apply -f - <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: redis}
spec:
  selector: {matchLabels: {app: redis}}
  template:
    metadata: {labels: {app: redis}}
    spec:
      containers:
        - name: redis
          image: redis:7-alpine
          # Keyspace events for the operator's fast-wake path, as the README recommends.
          args: ["--requirepass", "$(REDIS_PASSWORD)", "--notify-keyspace-events", "Kgl"]
          env:
            - name: REDIS_PASSWORD
              valueFrom: {secretKeyRef: {name: redis-auth, key: password}}
          ports: [{containerPort: 6379}]
---
apiVersion: v1
kind: Service
metadata: {name: redis}
spec:
  selector: {app: redis}
  ports: [{port: 6379}]
YAML
kubectl -n "$ns" rollout status deployment/redis --timeout=120s

log "installing the operator chart"
helm install uso "$root/charts/usersession-operator" --namespace usersession-system \
  --create-namespace --wait \
  --set image.repository=usersession-operator --set image.tag=e2e --set image.pullPolicy=Never \
  --set redis.address="redis.$ns.svc.cluster.local:6379"

# The push Service has no selector: the leader publishes its own pod IP as its endpoint.
leader_ip() {
  local holder
  holder=$(kubectl -n usersession-system get lease uso-usersession-operator -o jsonpath='{.spec.holderIdentity}')
  [[ -n "$holder" ]] && kubectl -n usersession-system get pod "$holder" -o jsonpath='{.status.podIP}'
}
push_routes_to_leader() {
  local ip
  ip=$(leader_ip) || return 1
  [[ -n "$ip" && "$(kubectl -n usersession-system get endpointslice uso-usersession-operator-push \
    -o jsonpath='{.endpoints[*].addresses[*]}' 2>/dev/null)" == "$ip" ]]
}
wait_for "the push Service's endpoint is the leader's pod" 60 push_routes_to_leader

log "applying a UserSession (short idle timeout so the test sees it sleep)"
kubectl -n "$ns" apply -f - <<'YAML'
apiVersion: sessions.ai-infra.dev/v1alpha1
kind: UserSession
metadata: {name: e2e}
spec:
  userId: e2e@example.com
  workload: {image: "registry.k8s.io/pause:3.10"}
  scaling: {idleTimeoutSeconds: 20, pollingIntervalSeconds: 5}
YAML

phase() { kubectl -n "$ns" get usersession e2e -o jsonpath='{.status.phase}'; }
replicas() { kubectl -n "$ns" get deployment e2e -o jsonpath='{.spec.replicas}'; }
is_phase() { [[ "$(phase)" == "$1" ]]; }
has_replicas() { [[ "$(replicas)" == "$1" ]]; }
redis_cli() { kubectl -n "$ns" exec deploy/redis -- sh -c "REDISCLI_AUTH=\"\$REDIS_PASSWORD\" redis-cli $*"; }

wait_for "session Sleeping at 0 replicas" 120 is_phase Sleeping
has_replicas 0 || fail "a new session must start at 0 replicas, found $(replicas)"

log "pushing a message onto the session's queue"
queue=$(kubectl -n "$ns" get usersession e2e -o jsonpath='{.status.queueName}')
redis_cli LPUSH "$queue" hello >/dev/null
wait_for "KEDA scaled the session to 1" 120 has_replicas 1
wait_for "session Running (pod ready)" 180 is_phase Running

log "emptying the queue (what a worker does) and waiting for sleep"
redis_cli DEL "$queue" >/dev/null
wait_for "KEDA scaled the session back to 0" 180 has_replicas 0
wait_for "session Sleeping again" 120 is_phase Sleeping

log "deleting the session: children and Redis keys must go"
redis_cli LPUSH "$queue" leftover >/dev/null
kubectl -n "$ns" delete usersession e2e --timeout=120s
gone() { ! kubectl -n "$ns" get deployment e2e >/dev/null 2>&1; }
wait_for "children garbage-collected" 120 gone
[[ "$(redis_cli EXISTS "$queue" | tr -d '\r')" == "0" ]] || fail "the session's queue survived deletion"
log "PASSED"
