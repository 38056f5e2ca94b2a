"""`usersession-operator`: run the operator against a cluster."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from usersession_operator.observability import configure_logging
from usersession_operator.runtime import memory
from usersession_operator.settings import OperatorSettings, with_flags

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
        help="run the operator against KUBECONFIG, ~/.kube/config or the in-cluster config",
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
    run.add_argument("--log-format", choices=["text", "json"], help="(env USERSESSION_LOG_FORMAT)")
    run.add_argument(
        "--liveness-port",
        type=int,
        help="kopf health endpoint port (env USERSESSION_LIVENESS_PORT)",
    )
    run.add_argument(
        "--metrics-port", type=int, help="Prometheus metrics port (env USERSESSION_METRICS_PORT)"
    )
    run.add_argument(
        "--leader-election",
        action=argparse.BooleanOptionalAction,
        help="run as one of several replicas: act only while holding the leader Lease "
        "(env USERSESSION_LEADER_ELECTION=on|off; the Lease: USERSESSION_LEADER_ELECTION_LEASE "
        "in USERSESSION_LEADER_ELECTION_NAMESPACE)",
    )
    run.add_argument(
        "--poll-interval",
        type=float,
        help="seconds between Redis queue-depth polls (env USERSESSION_POLL_INTERVAL)",
    )
    return parser


def _settings(args: argparse.Namespace) -> OperatorSettings:
    settings = OperatorSettings.from_env()
    if args.namespace:
        settings = dataclasses.replace(settings, namespaces=tuple(args.namespace))
    if args.leader_election is not None:
        election = dataclasses.replace(settings.leader_election, enabled=args.leader_election)
        settings = dataclasses.replace(settings, leader_election=election)
    return with_flags(
        settings,
        args,
        {
            "log_level": "log_level",
            "log_format": "log_format",
            "liveness_port": "liveness_port",
            "metrics_port": "metrics_port",
            "poll_interval": "poll_interval_seconds",
        },
    )


def _run_operator(settings: OperatorSettings) -> None:
    import kopf

    from usersession_operator import handlers  # noqa: F401  (registers the handlers)

    stop = asyncio.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await kopf.operator(
            clusterwide=not settings.namespaces,
            namespaces=list(settings.namespaces),
            # Replicas elect a leader through a Lease (leadership/), not kopf's peering.
            standalone=True,
            liveness_endpoint=f"http://{settings.listen_host}:{settings.liveness_port}/healthz",
            memo=kopf.Memo(settings=settings),
            stop_flag=stop,
        )

    asyncio.run(main())


def main(argv: Sequence[str] | None = None) -> int:
    memory.limit_arenas()  # first: before any thread has an arena of its own
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings(args)
        settings.check()
    except ValueError as exc:  # bad numbers in the environment, or a bad address
        parser.error(str(exc))
    configure_logging(settings.log_level, settings.log_format)
    if args.command == "run":
        if not _has_cluster_config():
            # The local development stack is not part of the shipped operator.
            print(
                "usersession-operator: no cluster configured (KUBECONFIG, ~/.kube/config or "
                "in-cluster). To try the whole product locally, run hack/run.sh (without "
                "--cluster) from a source checkout.",
                file=sys.stderr,
            )
            return 2
        from usersession_operator.kube import preflight

        try:
            missing = preflight.problem()
        except Exception as exc:  # unreachable, forbidden: kopf retries and reports those
            log.warning("could not check the cluster before starting: %s", exc)
            missing = None
        if missing:
            print(missing, file=sys.stderr)
            return 2
        try:
            _run_operator(settings)
        except Exception as exc:  # kopf's ActivityError: a startup handler failed for good
            # kopf has logged the handler's own message; a traceback adds nothing.
            log.error("usersession-operator stopped: %s", exc)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
