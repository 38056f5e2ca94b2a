"""kopf handlers for UserSession. Thin: the behaviour is in controller.py.

Children and pods are not watched through kopf: see watching.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf
from prometheus_client import start_http_server

from usersession_operator import metrics
from usersession_operator.kube.client import (
    API_CONCURRENCY,
    Kube,
    connection_info,
    operator_api_client,
)
from usersession_operator.leadership import elector as leadership
from usersession_operator.leadership import endpoints as pushendpoints
from usersession_operator.reconcile.controller import Controller
from usersession_operator.runtime import looplag, memory
from usersession_operator.runtime.bookkeeping import Bookkeeping
from usersession_operator.session.model import FINALIZER, GROUP, PLURAL, VERSION, InvalidSession
from usersession_operator.session.spec import check_settings
from usersession_operator.settings import OperatorSettings
from usersession_operator.wake import pushscaler

log = logging.getLogger(__name__)

SESSIONS = (GROUP, VERSION, PLURAL)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config: OperatorSettings = memo.get("settings") or OperatorSettings.from_env()
    memo["settings"] = config
    try:  # a bad address would fail every poll: refuse to start instead
        check_settings(config)
    except InvalidSession as exc:
        raise kopf.PermanentError(str(exc)) from exc
    # kopf's bookkeeping stays in memory (see bookkeeping.py); the finalizer is
    # under our own domain.
    settings.persistence.finalizer = FINALIZER
    bookkeeping = Bookkeeping(prefix=GROUP)
    bookkeeping.install(settings)
    # Events only for what needs a human; a success event per reconcile is an
    # API write per reconcile.
    settings.posting.level = logging.WARNING
    if config.log_level != "DEBUG":
        # kopf logs a line per handled watch event; with pods and Deployments
        # watched that drowns the operator's own messages.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # First, so that a taken port stops the operator before it has started
    # anything; guarded because kopf reruns this handler after a temporary error.
    if config.metrics_port and "metrics_server" not in memo:
        memo["metrics_server"] = _serve_metrics(config)
    # A standby waits here: kopf starts no watch before this handler returns.
    await leadership.lead(config, memo)
    # Blocking API calls run in this many threads, over as many connections.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(API_CONCURRENCY, thread_name_prefix="kube")
    )
    api_client = await asyncio.to_thread(operator_api_client)
    controller = Controller(config, Kube(api_client), forget=bookkeeping.forget)
    await controller.start()
    memo["controller"] = controller
    memo["loop_lag"] = asyncio.create_task(looplag.measure_forever(), name="loop-lag")
    memo["trim"] = asyncio.create_task(memory.trim_forever(), name="malloc-trim")
    if config.push_port and "push_server" not in memo:
        memo["push_server"] = await _serve_push(controller, config)
        metrics.PUSH_STREAMS.set_function(controller.poller.push.streams)
    pushendpoints.publish(config, memo)  # serving: the push Service may now route here
    poller = controller.poller
    memo["poller"] = asyncio.create_task(poller.poll_forever(), name="redis-poller")
    memo["reactor"] = asyncio.create_task(poller.react_forever(), name="keyspace-reactor")
    scope = ", ".join(config.namespaces) or "all namespaces"
    log.info(
        "usersession-operator started (watching %s; Redis default %s; poll every %ss)",
        scope,
        config.redis.address,
        config.poll_interval_seconds,
    )


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


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    return connection_info()


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, **_: Any) -> None:
    for task in (memo.get("poller"), memo.get("reactor"), memo.get("loop_lag"), memo.get("trim")):
        if task is not None:
            task.cancel()
    await pushendpoints.withdraw(memo)  # KEDA stops being routed here before the port closes
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
    await leadership.step_down(memo)  # last: after every write of ours has stopped


@kopf.on.probe(id="redis_poll_age_seconds")
async def poll_age(memo: kopf.Memo, **_: Any) -> float | None:
    controller: Controller | None = memo.get("controller")
    last_poll = controller.poller.last_poll if controller is not None else None
    if last_poll is None:
        return None
    return round(time.monotonic() - last_poll, 1)


# -- UserSession -----------------------------------------------------------------


@kopf.on.create(*SESSIONS)
async def created(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await memo["controller"].reconcile(body)


@kopf.on.update(*SESSIONS, field="spec")
async def spec_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await memo["controller"].reconcile(body)


@kopf.on.resume(*SESSIONS)
async def resumed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await memo["controller"].reconcile(body)


@kopf.on.delete(*SESSIONS, retries=None)
async def deleted(
    body: kopf.Body, memo: kopf.Memo, runtime: dt.timedelta, retry: int, **_: Any
) -> None:
    await memo["controller"].finalize(body, runtime, retry)


# Async on purpose, like every handler touching the controller's state: kopf runs
# sync handlers in worker threads, and the state is only safe on the event loop.
@kopf.on.event(*SESSIONS)
async def session_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    controller: Controller | None = memo.get("controller")
    if controller is not None:
        controller.session_event(event.get("type"), event["object"])
