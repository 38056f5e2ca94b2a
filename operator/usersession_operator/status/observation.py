"""What the operator saw of one session: the input of every status computation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from usersession_operator.session.model import DEFAULT_START_TIMEOUT_SECONDS


@dataclass(frozen=True)
class Observation:
    generation: int
    reconciled_generation: int | None  # generation the last reconcile acted on (ok or not)
    deleting: bool
    suspend: bool
    queue_name: str
    children: Mapping[
        str, str
    ]  # {"deployment": name, "scaledObject": ..., "triggerAuthentication": ...}
    deployment: Mapping[str, Any] | None
    scaled_object: Mapping[str, Any] | None
    trigger_authentication: Mapping[str, Any] | None
    pods: Sequence[Mapping[str, Any]] = ()
    queue_depth: int | None = None  # None: not polled yet, or Redis failed
    processing_depth: int | None = None  # messages in flight; None as queue_depth
    # When work was first seen while the session slept; its wake ends at Running.
    wake_started: dt.datetime | None = None
    redis_error: str | None = None
    reconcile_error: str | None = None
    start_timeout_seconds: int = DEFAULT_START_TIMEOUT_SECONDS
    # Messages at or below this wait asleep (KEDA's activationListLength).
    activation_length: int = 0
    # Whether the ScaledObject has the operator's external-push trigger.
    push_trigger: bool = False
    # The session's claim: wanted when spec.storage is set; what the watch shows.
    claim_wanted: bool = False
    claim: Mapping[str, Any] | None = None
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def work_waiting(self) -> bool:
        """Work that should wake the session: messages in flight, or more waiting than
        activationLength (at or below it they wait asleep, by design)."""
        return (self.queue_depth or 0) > self.activation_length or (self.processing_depth or 0) > 0
