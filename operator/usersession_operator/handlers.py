"""kopf handlers for UserSession (thin: they delegate to builders, kube and status)."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from .settings import OperatorSettings

log = logging.getLogger(__name__)


@kopf.on.startup()
def startup(memo: kopf.Memo, **_: Any) -> None:
    if memo.get("settings") is None:
        memo["settings"] = OperatorSettings.from_env()
    log.info("usersession-operator started")
