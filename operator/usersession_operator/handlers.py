"""kopf handlers for UserSession: one line each. The behaviour is in lifecycle.py and
reconcile/; children and pods are watched by label in kube/watching.py, not by kopf.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import kopf

from usersession_operator import lifecycle
from usersession_operator.session.model import GROUP, PLURAL, VERSION

SESSIONS = (GROUP, VERSION, PLURAL)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    await lifecycle.start(settings, memo)


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    return lifecycle.login()


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, **_: Any) -> None:
    await lifecycle.stop(memo)


@kopf.on.probe(id="redis_poll_age_seconds")
async def poll_age(memo: kopf.Memo, **_: Any) -> float | None:
    return lifecycle.poll_age(memo)


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
    if "controller" in memo:
        memo["controller"].session_event(event.get("type"), event["object"])
