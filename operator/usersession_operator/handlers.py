"""kopf handlers: one line each. kopf runs the process (start, stop, login, the
liveness probe); UserSessions, their children and pods are listed and watched by
the controller itself (reconcile/controller.py), not by kopf's per-object machinery.
"""

from __future__ import annotations

from typing import Any

import kopf

from usersession_operator import lifecycle


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
