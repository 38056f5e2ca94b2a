"""`python -m usersession_localstack`: the whole product on loopback (hack/run.sh, no cluster).

`--cluster-only` starts just the control plane, Redis, the CRDs and KEDA.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

from usersession_localstack.cluster import LocalCluster
from usersession_localstack.stack import Stack


def _follow(path: Path, stop: threading.Event) -> None:
    """Print the operator's log as it grows, so the terminal shows what it does."""
    with path.open(errors="replace") as log:
        while not stop.is_set():
            line = log.readline()
            if line:
                print(line, end="", flush=True)
            else:
                stop.wait(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m usersession_localstack", description=__doc__)
    parser.add_argument(
        "--cluster-only",
        action="store_true",
        help="no operator, session API or workers: just what they need",
    )
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # A shell starting us in the background (`cmd &` without job control) leaves
    # SIGINT ignored, and Python then never raises KeyboardInterrupt: Ctrl-C, or
    # `kill -INT`, must stop the stack wherever it was started from.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print("Starting the local stack (the first run builds the binaries, which takes a while)...")
    if args.cluster_only:
        with LocalCluster() as cluster:
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
    with Stack() as stack:
        print(stack.banner(), flush=True)
        operator_log = stack.cluster.workdir / "logs" / "usersession-operator.log"
        threading.Thread(target=_follow, args=(operator_log, stop), daemon=True).start()
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
