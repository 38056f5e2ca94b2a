"""Writing a session's status: observe, compute (status/), and patch only what changed.

One write at a time per session (a lock each), the Warning event before the
status that explains it, and the wake's clock kept here: started when work is
seen on a sleeping session, stopped when its pod is Ready.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from usersession_operator import metrics
from usersession_operator.builders.scaledobject import PAUSED_REPLICAS_ANNOTATION
from usersession_operator.kube.client import (
    ApiException,
    describe,
    describe_api_error,
    unreachable,
)
from usersession_operator.kube.writes import Kube
from usersession_operator.reconcile.parsed import ParsedSessions
from usersession_operator.runtime.background import Background
from usersession_operator.session.keys import default_queue_name
from usersession_operator.session.model import DEFAULT_START_TIMEOUT_SECONDS, Phase, Session
from usersession_operator.state import ClusterState, Key
from usersession_operator.status.compute import compute_status, status_patch, wake_start
from usersession_operator.status.conditions import new_warning
from usersession_operator.status.observation import Observation
from usersession_operator.status.times import parse_time

log = logging.getLogger(__name__)

# Status refreshes a poll runs side by side.
REFRESH_BATCH = 32


class StatusWriter:
    def __init__(self, state: ClusterState, kube: Kube, parsed: ParsedSessions) -> None:
        self.state = state
        self.kube = kube
        self.parsed = parsed
        self._locks: dict[Key, asyncio.Lock] = {}
        self._users: dict[Key, int] = {}  # refreshes holding or awaiting each lock
        self._scheduled: set[Key] = set()  # refreshes scheduled and not started yet
        # Sessions whose status can change with the clock alone (time_matters), as of
        # their last refresh: what a poll refreshes besides those whose lists changed.
        self.clocked: set[Key] = set()
        self._background = Background("status refresh")

    def forget(self, key: Key) -> None:
        self._locks.pop(key, None)
        self.clocked.discard(key)

    async def settle(self) -> None:
        await self._background.settle()

    async def close(self) -> None:
        await self._background.close()

    def schedule(self, key: Key) -> None:
        """Refresh a session's status soon; events that arrive together make one refresh."""
        if key not in self._scheduled:
            self._scheduled.add(key)
            self._background.spawn(self._scheduled_refresh(key))

    def spawn(self, key: Key) -> None:
        """Refresh now, beside the caller (the keyspace reactor must not wait for it)."""
        self._background.spawn(self.refresh_settled(key))

    async def _scheduled_refresh(self, key: Key) -> None:
        await asyncio.sleep(0)  # let the events already queued land first
        self._scheduled.discard(key)  # a later event schedules another
        await self.refresh_settled(key)

    async def refresh_settled(self, key: Key) -> None:
        """Refresh, unless the session has not been reconciled yet: its reconcile
        writes the first status, once, instead of a status per child applied."""
        if key in self.state.reconciled:
            await self.refresh(key)

    async def refresh_many(self, keys: Iterable[Key]) -> None:
        """Refresh the settled ones, a batch at a time, so thousands of sessions neither
        hold the event loop for long nor queue thousands of writes at once."""
        batch: list[Key] = []
        for key in keys:
            batch.append(key)
            if len(batch) == REFRESH_BATCH:
                await asyncio.gather(*(self.refresh_settled(k) for k in batch))
                batch = []
        if batch:
            await asyncio.gather(*(self.refresh_settled(k) for k in batch))

    async def refresh(self, key: Key) -> None:
        # A lock a session while a refresh of it runs, dropped after: thousands of
        # idle sessions need none.
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                await self._refresh(key)
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                self._locks.pop(key, None)
        if key in self.state.sessions and self.time_matters(key):
            self.clocked.add(key)
        else:
            self.clocked.discard(key)

    async def _refresh(self, key: Key) -> None:
        body = self.state.sessions.get(key)
        if body is None:
            return
        previous = self.state.written_status.get(key, body.get("status") or {})
        obs = self._observe(key, body)
        recorded = parse_time(previous.get("wakeStartedAt"))
        if obs.wake_started is None and recorded is not None:
            # A wake a leader before this one began (it wrote when): the start timeout
            # counts from there, not from this replica's first look.
            self.state.wake_started[key] = recorded
            obs = dataclasses.replace(obs, wake_started=recorded)
        started = wake_start(obs, previous.get("phase"))
        if started is not None and obs.wake_started is None:
            self.state.wake_started[key] = started
            obs = dataclasses.replace(obs, wake_started=started)
        desired = compute_status(obs, previous)
        reading = self.state.queues.get(key)
        idle = reading is None or not reading.busy
        if desired["phase"] == Phase.SUSPENDED or (desired["phase"] == Phase.SLEEPING and idle):
            # Not a wake any more. A Degraded one is: its clock keeps running, so
            # the start timeout and the wake's duration count what the user waits.
            self.state.wake_started.pop(key, None)
        patch = status_patch(previous, desired)
        if patch is None:
            # Known to be current: the poll need not look again until something changes.
            self.state.written_status.setdefault(key, dict(previous))
            return
        warning = new_warning(previous, desired)
        if warning is not None:
            # Before the write, so whoever sees the new status also finds the
            # event; a refused write repeats it, which beats losing it.
            await self.warn(key, body, *warning)
        try:
            await asyncio.to_thread(self.kube.patch_status, key[0], key[1], patch)
        except ApiException as exc:
            if exc.status != 404:  # gone already: nothing to report on
                log.warning("status update of %s/%s failed: %s", *key, describe_api_error(exc))
            return
        except Exception as exc:
            if not unreachable(exc):
                raise
            # The API server is away (restarting, say): the next poll or event writes it.
            log.warning("status update of %s/%s failed: %s", *key, describe(exc))
            return
        metrics.STATUS_PATCHES.inc()
        self.state.written_status[key] = desired
        woken = (
            self.state.wake_started.pop(key, None) if desired["phase"] == Phase.RUNNING else None
        )
        if woken is not None and "lastWakeSeconds" in desired:
            metrics.WAKE_SECONDS.observe(desired["lastWakeSeconds"])

    async def warn(self, key: Key, body: Mapping[str, Any], reason: str, message: str) -> None:
        """A Warning event about the session; failing to post it fails nothing else."""
        log.warning("UserSession %s/%s: %s: %s", *key, reason, message)
        try:
            await asyncio.to_thread(self.kube.post_event, body, "Warning", reason, message)
        except Exception as exc:  # an event is a courtesy: it must not fail a status update
            detail = (
                describe_api_error(exc) if isinstance(exc, ApiException) else type(exc).__name__
            )
            log.warning("could not post a %s event for %s/%s: %s", reason, *key, detail)

    def _observe(self, key: Key, body: Mapping[str, Any]) -> Observation:
        session = self.parsed.get(key)
        if isinstance(session, Session):
            queue, start_timeout = session.queue_name, session.start_timeout_seconds
            claim_wanted, activation = session.storage is not None, session.activation_length
            push = session.push_address is not None
        else:  # status still reports on an invalid session
            queue, start_timeout = default_queue_name(*key), DEFAULT_START_TIMEOUT_SECONDS
            claim_wanted, activation, push = False, 0, False
        child_key = self.state.child_key(key)
        reading = self.state.queues.get(key)
        reconciled = self.state.reconciled.get(key)
        name = child_key[1]
        scaled_object = self.state.scaled_objects.get(child_key)
        return Observation(
            generation=int(body.get("metadata", {}).get("generation") or 0),
            reconciled_generation=reconciled.generation if reconciled else None,
            deleting=bool(body.get("metadata", {}).get("deletionTimestamp")),
            # What KEDA is told, not what the spec asks: the spec may be ahead.
            suspend=PAUSED_REPLICAS_ANNOTATION in _annotations(scaled_object),
            queue_name=queue,
            children={
                "deployment": name,
                "scaledObject": name,
                "triggerAuthentication": name,
                **({"persistentVolumeClaim": name} if claim_wanted else {}),
            },
            deployment=self.state.deployments.get(child_key),
            scaled_object=scaled_object,
            trigger_authentication=self.state.trigger_authentications.get(child_key),
            pods=list(self.state.pods.get(child_key, {}).values()),
            start_timeout_seconds=start_timeout,
            activation_length=activation,
            push_trigger=push,
            claim_wanted=claim_wanted,
            claim=self.state.claims.get(child_key),
            queue_depth=reading.depth if reading else None,
            processing_depth=reading.processing if reading else None,
            wake_started=self.state.wake_started.get(key),
            redis_error=reading.error if reading else None,
            reconcile_error=reconciled.error if reconciled else None,
            now=dt.datetime.now(dt.UTC),
        )

    def time_matters(self, key: Key) -> bool:
        """Whether a session's status can change with the clock alone (its lists and
        children unchanged): a busy session's activity time, a wake's start timeout.
        A session asleep and idle cannot; skipping it is what keeps a poll over
        thousands of sleeping sessions cheap."""
        reading = self.state.queues.get(key)
        phase = self.state.written_status.get(key, {}).get("phase")
        return (
            phase not in (Phase.SLEEPING, Phase.SUSPENDED)
            or (reading is not None and reading.busy)
            or key in self.state.wake_started
        )


def _annotations(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}
