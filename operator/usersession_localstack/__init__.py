"""A real Kubernetes control plane and Redis on loopback, for tests and local runs.

envtest's approach, in Python: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (fake nodes that run pods "for real" as far as the API
is concerned) as local processes, plus redis-server with a password.
"""

from .cluster import LocalCluster

__all__ = ["LocalCluster"]
