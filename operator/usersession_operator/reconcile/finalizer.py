"""What garbage collection cannot do: a deleted session's Redis keys, and deleting
sessions idle past spec.expireAfterIdleSeconds (their keys then go the same way).

A deletion never hangs for good: with Redis down the cleanup is retried with
backoff and a Warning event each time; after cleanup_timeout_seconds it gives up,
names the keys left behind in a Warning event, and lets the deletion finish.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from usersession_operator import metrics
from usersession_operator.backoff import Backoff
from usersession_operator.kube.client import (
    ApiException,
    describe,
    describe_api_error,
    unreachable,
)
from usersession_operator.kube.writes import Kube
from usersession_operator.queues.cleanup import delete_session_keys
from usersession_operator.queues.connections import RedisConnections
from usersession_operator.queues.targets import QueueTarget
from usersession_operator.reconcile.parsed import ParsedSessions
from usersession_operator.reconcile.queue import RetryLater
from usersession_operator.reconcile.statuswriter import StatusWriter
from usersession_operator.session.keys import processing_key
from usersession_operator.session.model import InvalidSession
from usersession_operator.settings import OperatorSettings
from usersession_operator.state import ClusterState, Key
from usersession_operator.status.expiry import expired

log = logging.getLogger(__name__)

CLEANUP_RETRY = Backoff(first=1.0, ceiling=30.0)

# (connections, target) -> the keys removed; queues/cleanup.py's, or a test's.
Cleanup = Callable[[RedisConnections, QueueTarget], Awaitable[list[str]]]


class Finalizer:
    def __init__(
        self,
        settings: OperatorSettings,
        state: ClusterState,
        kube: Kube,
        connections: RedisConnections,
        parsed: ParsedSessions,
        status: StatusWriter,
        cleanup: Cleanup = delete_session_keys,
    ) -> None:
        self.settings = settings
        self.state = state
        self.kube = kube
        self.connections = connections
        self.parsed = parsed
        self.status = status
        self.cleanup = cleanup
        self._attempts: dict[Key, int] = {}

    async def finalize(self, key: Key, runtime: dt.timedelta) -> None:
        """Remove the session's Redis keys; the children go by garbage collection.

        runtime: how long the session has been waiting for this. Raises RetryLater,
        with a delay that doubles up to 30 s, until the cleanup works or times out.
        """
        body = self.state.sessions[key]
        await self.status.refresh(key)
        session = self.parsed.get(key)
        if isinstance(session, InvalidSession):
            message = f"the session is invalid, so its keys are unknown: {session}"
            await self.status.warn(key, body, "RedisCleanupSkipped", message)
            return
        target = QueueTarget.of(session, self.settings)
        try:
            removed = await self.cleanup(self.connections, target)
        except Exception as exc:  # any failure is retried the same way
            reason = (
                f"{type(exc).__name__}: {exc}"
                if not isinstance(exc, ApiException)
                else describe_api_error(exc)
            )
            left = f"{target.queue}, {processing_key(target.queue)}, {target.queue}:reply:*"
            limit = self.settings.cleanup_timeout_seconds
            if runtime.total_seconds() >= limit:
                metrics.CLEANUPS.labels("abandoned").inc()
                message = f"gave up after {limit:.0f}s ({reason}); keys left in Redis: {left}"
                await self.status.warn(key, body, "RedisCleanupAbandoned", message)
                self._attempts.pop(key, None)
                return
            metrics.CLEANUPS.labels("retry").inc()
            retry = self._attempts[key] = self._attempts.get(key, 0) + 1
            delay = CLEANUP_RETRY.delay(retry)
            # The unspread wait, so repeated events read alike and aggregate.
            about = CLEANUP_RETRY.base(retry)
            message = f"{reason}; retrying in about {about:.0f}s (giving up after {limit:.0f}s)"
            await self.status.warn(key, body, "RedisCleanupFailed", message)
            raise RetryLater(reason, delay) from exc
        self._attempts.pop(key, None)
        metrics.CLEANUPS.labels("ok").inc()
        log.info("deleted Redis keys of %s/%s: %s", *key, removed)

    async def expire_idle(self) -> None:
        """Delete the sessions idle past their spec.expireAfterIdleSeconds (after a poll)."""
        now = dt.datetime.now(dt.UTC)
        for key in list(self.state.expiring):
            body = self.state.sessions[key]
            limit = (body.get("spec") or {}).get("expireAfterIdleSeconds")
            if not isinstance(limit, int) or isinstance(limit, bool):
                continue  # off, or refused by the schema already
            status = self.state.written_status.get(key) or body.get("status") or {}
            if expired(limit, body, status, self.state.queues.get(key), now):
                await self._expire(key, body, limit)

    async def _expire(self, key: Key, body: Mapping[str, Any], limit: int) -> None:
        message = f"no activity for {limit}s (spec.expireAfterIdleSeconds): deleting the session"
        log.info("UserSession %s/%s: %s", *key, message)
        try:
            await asyncio.to_thread(self.kube.post_event, body, "Normal", "Expired", message)
            uid = str(body.get("metadata", {}).get("uid") or "")
            await asyncio.to_thread(self.kube.delete_session, *key, uid)
        except Exception as exc:
            if not (isinstance(exc, ApiException) or unreachable(exc)):
                raise
            # Gone, or replaced by a new one (404, 409): nothing to do. Else the next
            # poll tries again.
            if not (isinstance(exc, ApiException) and exc.status in (404, 409)):
                log.warning("could not expire %s/%s: %s", *key, describe(exc))
            return
        metrics.EXPIRED.inc()
