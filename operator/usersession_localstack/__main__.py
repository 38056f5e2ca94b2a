"""`python -m usersession_operator.localcluster`: start the cluster and wait."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

from .cluster import LocalCluster
from .manifests import install_crds


def main() -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalCluster() as cluster:
        install_crds(cluster)
        print(f"kubeconfig: {cluster.kubeconfig}", flush=True)
        print(
            f"redis: {cluster.redis_host}:{cluster.redis_port} "
            f"(password in {cluster.redis_password_file})",
            flush=True,
        )
        print("Ctrl-C stops everything.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
