"""The local development stack: the whole product on loopback, for tests and hack/run.sh.

envtest's approach, in Python: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (fake nodes that run pods "for real" as far as the API
is concerned) as local processes, redis-server with a password, the real KEDA
operator, and (for the main job) the operator, the session API and a reference
worker process per Running session pod. A development tool: it is not in the
image (.dockerignore) and the operator does not import it (.importlinter). The
entry points are cluster.LocalCluster (the cluster, Redis and KEDA) and
stack.Stack (the whole product, for hack/run.sh).
"""
