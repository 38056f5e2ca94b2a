"""`usersession-operator`: run the operator, against a cluster or a local one."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from .model import check_settings
from .settings import OperatorSettings

log = logging.getLogger("usersession_operator")


def _has_cluster_config() -> bool:
    return (
        bool(os.environ.get("KUBECONFIG"))
        or (Path.home() / ".kube" / "config").exists()
        or bool(
            os.environ.get("KUBERNETES_SERVICE_HOST")  # in-cluster
        )
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="usersession-operator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="run the operator (against KUBECONFIG / ~/.kube/config / in-cluster config; "
        "with none, against a local control plane and Redis started for the purpose)",
    )
    run.add_argument(
        "--local",
        action="store_true",
        help="start and use a local control plane even when a cluster is configured",
    )
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: all namespaces "
        "(env USERSESSION_NAMESPACES, comma-separated)",
    )
    run.add_argument("--log-level", help="DEBUG, INFO, WARNING... (env USERSESSION_LOG_LEVEL)")
    run.add_argument(
        "--liveness-port",
        type=int,
        help="kopf health endpoint port (env USERSESSION_LIVENESS_PORT)",
    )
    run.add_argument(
        "--metrics-port", type=int, help="Prometheus metrics port (env USERSESSION_METRICS_PORT)"
    )
    run.add_argument(
        "--poll-interval",
        type=float,
        help="seconds between Redis queue-depth polls (env USERSESSION_POLL_INTERVAL)",
    )
    return parser


def _settings(args: argparse.Namespace) -> OperatorSettings:
    settings = OperatorSettings.from_env()
    overrides: dict[str, object] = {}
    if args.namespace:
        overrides["namespaces"] = tuple(args.namespace)
    for flag, field in [
        ("log_level", "log_level"),
        ("liveness_port", "liveness_port"),
        ("metrics_port", "metrics_port"),
        ("poll_interval", "poll_interval_seconds"),
    ]:
        value = getattr(args, flag)
        if value is not None:
            overrides[field] = value.upper() if field == "log_level" else value
    return dataclasses.replace(settings, **overrides)  # type: ignore[arg-type]


@contextlib.contextmanager
def _local_cluster(settings: OperatorSettings) -> Iterator[OperatorSettings]:
    """Start the embedded control plane + Redis and point the operator at it."""
    from .localcluster import LocalCluster
    from .localcluster.manifests import install_crds

    print(
        "No cluster configured: starting a local control plane and Redis "
        "(the first run builds the binaries, which takes a while)...",
        flush=True,
    )
    with LocalCluster() as cluster:
        install_crds(cluster)
        cluster.api(
            "POST",
            "/api/v1/namespaces/default/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": settings.redis.secret_name},
                "stringData": {settings.redis.secret_key: cluster.redis_password},
            },
        )
        os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
        address = f"{cluster.redis_host}:{cluster.redis_port}"
        print(
            f"\nLocal cluster ready.\n"
            f"  kubeconfig: {cluster.kubeconfig}\n"
            f"    export KUBECONFIG={cluster.kubeconfig}; kubectl get nodes\n"
            f"  redis:      {address}  (Secret default/{settings.redis.secret_name})\n"
            f"    REDISCLI_AUTH=$(cat {cluster.redis_password_file})"
            f" redis-cli -p {cluster.redis_port}\n"
            f"  logs:       {cluster.workdir / 'logs'}\n",
            flush=True,
        )
        yield dataclasses.replace(
            settings, redis=dataclasses.replace(settings.redis, address=address)
        )


def _run_operator(settings: OperatorSettings) -> None:
    import kopf

    from . import handlers  # noqa: F401  (registers the handlers)

    stop = asyncio.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await kopf.operator(
            clusterwide=not settings.namespaces,
            namespaces=list(settings.namespaces),
            standalone=True,  # one replica with a Recreate strategy; no peering CRDs needed
            liveness_endpoint=f"http://{settings.listen_host}:{settings.liveness_port}/healthz",
            memo=kopf.Memo(settings=settings),
            stop_flag=stop,
        )

    asyncio.run(main())


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings(args)
        check_settings(settings)
    except ValueError as exc:  # bad numbers in the environment, or a bad address
        parser.error(str(exc))
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "run":
        if args.local or not _has_cluster_config():
            with _local_cluster(settings) as local_settings:
                _run_operator(local_settings)
        else:
            _run_operator(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
