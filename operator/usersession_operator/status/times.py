"""Times as Kubernetes writes them (RFC 3339, whole seconds, UTC)."""

from __future__ import annotations

import datetime as dt
from typing import Any


def timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> dt.datetime | None:
    """An RFC 3339 time as Kubernetes writes it, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    # The schema's date-time format admits a time without an offset.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
