"""The operator's start and stop, in the order that keeps every promise.

Start: refuse bad settings, serve metrics (a taken port stops it at once), wait
for the Lease as a standby, learn every session and child, serve the push port,
publish the push endpoint, then poll. Stop: the reverse, the Lease last, after
every write of ours has stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf
from prometheus_client import start_http_server

from usersession_operator import metrics
from usersession_operator.kube.client import (
    API_CONCURRENCY,
    CALL_TIMEOUT,
    connection_info,
    operator_api_client,
)
from usersession_operator.kube.secrets import Secrets
from usersession_operator.kube.writes import Kube
from usersession_operator.leadership import endpoints, standby
from usersession_operator.queues.connections import RedisConnections
from usersession_operator.reconcile.controller import Controller
from usersession_operator.runtime import budget, looplag, memory
from usersession_operator.session.model import InvalidSession
from usersession_operator.settings import OperatorSettings
from usersession_operator.wake import pushscaler

log = logging.getLogger(__name__)

_TASKS = ("poller", "reactor", "loop_lag", "trim", "freeze")


async def start(settings: kopf.OperatorSettings, memo: kopf.Memo) -> None:
    config: OperatorSettings = memo.get("settings") or OperatorSettings.from_env()
    memo["settings"] = config
    try:  # a bad address would fail every poll: refuse to start instead
        config.check()
    except InvalidSession as exc:
        raise kopf.PermanentError(str(exc)) from exc
    # kopf runs the process (these activities, login, probes, signals); it handles
    # no resource: sessions and children come from the controller's own watches.
    settings.scanning.disabled = True
    # First, so that a taken port stops the operator before it has started
    # anything; guarded because kopf reruns this handler after a temporary error.
    if config.metrics_port and "metrics_server" not in memo:
        memo["metrics_server"] = _serve_metrics(config)
    limit = budget.memory_limit()
    if limit is not None:
        metrics.MEMORY_LIMIT.set(limit)
    # A standby waits here: kopf starts no watch before this handler returns.
    await standby.lead(config, memo)
    # Blocking API calls run in this many threads, over as many connections.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(API_CONCURRENCY, thread_name_prefix="kube")
    )
    api_client = await asyncio.to_thread(operator_api_client)
    secrets = Secrets(api_client, CALL_TIMEOUT)
    connections = RedisConnections(secrets.secret, secrets.config_map)
    controller = Controller(config, Kube(api_client), connections)
    await controller.start()
    memo["controller"] = controller
    memo["loop_lag"] = asyncio.create_task(looplag.measure_forever(), name="loop-lag")
    memo["trim"] = asyncio.create_task(memory.trim_forever(), name="malloc-trim")
    memo["freeze"] = asyncio.create_task(
        memory.freeze_after(controller.queue.settle()), name="gc-freeze"
    )
    if config.push_port and "push_server" not in memo:
        memo["push_server"] = await _serve_push(controller, config)
        metrics.PUSH_STREAMS.set_function(controller.poller.push.streams)
    endpoints.publish(config, memo)  # serving: the push Service may now route here
    memo["poller"] = asyncio.create_task(controller.poll_forever(), name="redis-poller")
    memo["reactor"] = asyncio.create_task(controller.react_forever(), name="keyspace-reactor")
    scope = ", ".join(config.namespaces) or "all namespaces"
    log.info(
        "usersession-operator started (watching %s; Redis default %s; poll every %ss)",
        scope,
        config.redis.address,
        config.poll_interval_seconds,
    )


async def stop(memo: kopf.Memo) -> None:
    for name in _TASKS:
        task = memo.get(name)
        if task is not None:
            task.cancel()
    await endpoints.withdraw(memo)  # KEDA stops being routed here before the port closes
    push_server = memo.get("push_server")
    if push_server is not None:
        await push_server.stop(grace=1)
    controller = memo.get("controller")
    if controller is not None:
        await controller.close()
    server = memo.get("metrics_server")
    if server is not None:
        server.shutdown()
        server.server_close()  # shutdown() alone leaves the port bound until exit
    await standby.step_down(memo)  # last: after every write of ours has stopped


def poll_age(memo: kopf.Memo) -> float | None:
    """Seconds since the last finished poll cycle (the liveness endpoint shows it)."""
    controller: Controller | None = memo.get("controller")
    last_poll = controller.last_poll if controller is not None else None
    if last_poll is None:
        return None
    return round(time.monotonic() - last_poll, 1)


def login() -> kopf.ConnectionInfo:
    return connection_info()


def _serve_metrics(config: OperatorSettings) -> Any:
    try:
        server, _thread = start_http_server(
            config.metrics_port, addr=config.listen_host, registry=metrics.REGISTRY
        )
    except OSError as exc:
        # kopf would retry a plain error every minute for ever; a taken port
        # stays taken, so the operator stops and says which setting to change.
        raise kopf.PermanentError(
            f"cannot serve metrics on {config.listen_host}:{config.metrics_port} "
            f"({exc.strerror or exc}): free the port or choose another with "
            "USERSESSION_METRICS_PORT or --metrics-port (0 turns metrics off)"
        ) from exc
    return server


async def _serve_push(controller: Controller, config: OperatorSettings) -> Any:
    try:
        return await pushscaler.serve(
            controller.poller.push, config.listen_host, config.push_port, config.push_tls_dir
        )
    except ValueError as exc:
        raise kopf.PermanentError(f"USERSESSION_PUSH_TLS_DIR: {exc}") from exc
    except (OSError, RuntimeError) as exc:  # grpc reports a taken port as RuntimeError
        raise kopf.PermanentError(
            f"cannot serve the external-push scaler on {config.listen_host}:{config.push_port}"
            f" ({exc}): free the port or choose another with USERSESSION_PUSH_PORT"
            " (0 turns the fast-wake path off)"
        ) from exc
