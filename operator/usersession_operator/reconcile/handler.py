"""One session's turn on a worker (queue.py): the finalizer first, a new generation's
children, or a deleted session's cleanup. Returns when to look at it again, if ever.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Mapping
from typing import Any

from usersession_operator import metrics
from usersession_operator.backoff import Backoff
from usersession_operator.kube.client import ApiException, describe_api_error
from usersession_operator.kube.writes import Kube
from usersession_operator.queues.targets import QueueTarget
from usersession_operator.reconcile.children import Children
from usersession_operator.reconcile.finalizer import Finalizer
from usersession_operator.reconcile.parsed import ParsedSessions
from usersession_operator.reconcile.queue import RetryLater
from usersession_operator.reconcile.statuswriter import StatusWriter
from usersession_operator.session.model import FINALIZER, InvalidSession
from usersession_operator.settings import OperatorSettings
from usersession_operator.state import ClusterState, Key, ReconcileResult
from usersession_operator.status.times import parse_time
from usersession_operator.wake.poller import Poller

# A refused apply is tried again after about 10 s, doubling up to 5 min.
APPLY_RETRY = Backoff(first=10.0, ceiling=300.0)
# Someone else changed the finalizers between our read and our write: read again soon.
CONFLICT_RETRY = 0.5


def needs_handling(state: ClusterState, key: Key) -> bool:
    """Whether a worker must look at the session after a watch event: a status write of
    our own, or anyone's change to its labels, needs nothing."""
    meta = state.sessions[key]["metadata"]
    finalizers = meta.get("finalizers") or []
    if meta.get("deletionTimestamp"):
        return FINALIZER in finalizers
    reconciled = state.reconciled.get(key)
    # A failed apply is retried on its own timer (handle's answer), not by events.
    return (
        FINALIZER not in finalizers
        or reconciled is None
        or reconciled.generation != _generation(meta)
    )


class SessionHandler:
    def __init__(
        self,
        settings: OperatorSettings,
        state: ClusterState,
        kube: Kube,
        parsed: ParsedSessions,
        children: Children,
        status: StatusWriter,
        finalizer: Finalizer,
        poller: Poller,
    ) -> None:
        self.settings = settings
        self.state = state
        self.kube = kube
        self.parsed = parsed
        self.children = children
        self.status = status
        self.finalizer = finalizer
        self.poller = poller
        self._failed_applies: dict[Key, int] = {}

    def forget(self, key: Key) -> None:
        self._failed_applies.pop(key, None)

    async def handle(self, key: Key) -> float | None:
        """One session's turn: what it needs now. Returns when to look again, if ever."""
        body = self.state.sessions.get(key)
        if body is None:
            return None
        meta = body["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if meta.get("deletionTimestamp"):
            return await self._finalize(key, finalizers) if FINALIZER in finalizers else None
        if FINALIZER not in finalizers:
            # First of all: the Redis keys outlive the session otherwise.
            after = [*finalizers, FINALIZER]
            if not await asyncio.to_thread(self.kube.set_finalizers, *key, finalizers, after):
                return CONFLICT_RETRY
            meta["finalizers"] = after  # the watch brings the same soon
        reconciled = self.state.reconciled.get(key)
        if (
            reconciled is not None
            and reconciled.generation == _generation(meta)
            and (reconciled.error is None or reconciled.permanent)
        ):
            return None  # nothing new since the last reconcile, which worked
        return await self.reconcile(key)

    async def reconcile(self, key: Key) -> float | None:
        """Make the children match the spec, writing only those that differ.

        Level-based: after a restart every session is reconciled again, and one
        whose children are as wanted costs no write at all.
        """
        body = self.state.sessions[key]
        session = self.parsed.get(key)
        if isinstance(session, InvalidSession):
            self.poller.forget(key)
            self._reconciled(key, ReconcileResult(_generation(body), str(session), permanent=True))
            await self.status.refresh(key)
            metrics.RECONCILES.labels("invalid").inc()
            return None  # until its spec changes
        started = time.monotonic()
        try:
            await self.children.apply_all(session)
        except ApiException as exc:
            failures = self._failed_applies[key] = self._failed_applies.get(key, 0) + 1
            self._reconciled(key, ReconcileResult(_generation(body), describe_api_error(exc)))
            await self.status.refresh(key)
            metrics.RECONCILES.labels("error").inc()
            return APPLY_RETRY.delay(failures)
        self._failed_applies.pop(key, None)
        metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
        metrics.RECONCILES.labels("ok").inc()
        target = QueueTarget.of(session, self.settings)
        self.poller.follow(key, target)
        if key not in self.state.queues and "queueDepth" not in (body.get("status") or {}):
            # A new session: read its lists now, so that its first status already
            # has the depth instead of a second write after the next poll.
            await self.poller.read({key: target})
        self._reconciled(key, ReconcileResult(session.generation))
        await self.status.refresh(key)
        return None

    def _reconciled(self, key: Key, result: ReconcileResult) -> None:
        self.state.reconciled[key] = result

    async def _finalize(self, key: Key, finalizers: list[str]) -> float | None:
        """Clean Redis up, then let the deletion finish. The give-up deadline counts
        from the deletion itself, so an operator restart does not start it again."""
        meta = self.state.sessions[key]["metadata"]
        deleted = parse_time(meta.get("deletionTimestamp")) or dt.datetime.now(dt.UTC)
        try:
            await self.finalizer.finalize(key, dt.datetime.now(dt.UTC) - deleted)
        except RetryLater as exc:
            return float(exc.delay)
        after = [f for f in finalizers if f != FINALIZER]
        try:
            done = await asyncio.to_thread(self.kube.set_finalizers, *key, finalizers, after)
        except ApiException as exc:
            if exc.status == 404:  # gone already
                return None
            raise
        return None if done else CONFLICT_RETRY


def _generation(body_or_meta: Mapping[str, Any]) -> int:
    """The generation a reconcile acted on, whether it worked or not: status reports on it."""
    meta = body_or_meta.get("metadata", body_or_meta)
    return int(meta.get("generation") or 0)
