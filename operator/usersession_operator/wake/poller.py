"""Where queue depths come from, and how KEDA hears of work at once.

The poller reads both lists of every session it follows (the controller says
which: follow and forget) in one pass per poll, a few round trips per Redis
server. Between polls, keyspace notifications (queues/keyspace.py) name the
lists that changed; those are read at once. A session that just got work is
pushed to KEDA through the external-push scaler (pushscaler.py). The poller
writes no status: it says whose readings changed, and the controller decides
what to write.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Mapping

from usersession_operator import metrics
from usersession_operator.queues.connections import RedisConnections
from usersession_operator.queues.depths import DepthReader
from usersession_operator.queues.keyspace import KeyspaceWatcher
from usersession_operator.queues.targets import QueueTarget
from usersession_operator.session.model import Phase
from usersession_operator.state import ClusterState, Key, QueueReading
from usersession_operator.status.times import parse_time
from usersession_operator.wake.pushscaler import PushScaler

log = logging.getLogger(__name__)

# A session's status is written at most this often because of keyspace events;
# the regular poll and watch events are not limited.
EVENT_STATUS_INTERVAL = 1.0


class Poller:
    def __init__(self, state: ClusterState, connections: RedisConnections) -> None:
        self.state = state
        self.depths = DepthReader(connections)
        self.push = PushScaler(state)
        self.watcher = KeyspaceWatcher(connections, self.list_changed)
        self.targets: dict[Key, QueueTarget] = {}  # the sessions followed
        self._changed: set[Key] = set()  # lists a keyspace event named, not read yet
        self._changed_event = asyncio.Event()
        self._event_refreshed: dict[Key, float] = {}

    def follow(self, key: Key, target: QueueTarget) -> None:
        """Read this session's lists from now on (at once, on keyspace events)."""
        self.targets[key] = target
        self.watcher.add(key, target)

    def forget(self, key: Key) -> None:
        """A session gone, going, or invalid: its lists are no longer read."""
        self.targets.pop(key, None)
        self.watcher.remove(key)
        self._event_refreshed.pop(key, None)
        self._changed.discard(key)

    async def close(self) -> None:
        await self.watcher.close()

    async def poll_once(self) -> set[Key]:
        """Read every followed session's lists; returns those whose reading changed."""
        targets = dict(self.targets)
        started = time.monotonic()
        readings = await self.depths.read(targets)
        metrics.REDIS_POLL_SECONDS.observe(time.monotonic() - started)
        metrics.REDIS_POLL_ERRORS.inc(sum(1 for r in readings.values() if r.error))
        changed = self.record(readings)
        metrics.set_depths(
            sum(r.depth or 0 for r in readings.values()),
            sum(r.processing or 0 for r in readings.values()),
        )
        return changed

    async def read(self, targets: Mapping[Key, QueueTarget]) -> None:
        """Read some sessions' lists now (a new session's), outside the poll cycle."""
        self.record(await self.depths.read(targets))

    async def reactions(self) -> AsyncIterator[list[Key]]:
        """For ever: read the lists keyspace events named (pushing work to KEDA at once),
        and yield the sessions whose status is due, at most once a second each."""
        while True:
            await self._changed_event.wait()
            self._changed_event.clear()
            try:
                due = await self._react()
            except Exception:  # a bug here must not stop the fast path for good
                log.exception("reacting to keyspace events failed")
                continue
            if due:
                yield due

    async def _react(self) -> list[Key]:
        keys, self._changed = self._changed, set()
        targets = {key: self.targets[key] for key in keys if key in self.targets}
        self.record(await self.depths.read(targets))  # pushes work to KEDA at once
        due = []
        for key in targets:
            # Status follows within a second, but a chatty session costs at most
            # one write a second; its lists are read again until then.
            since = time.monotonic() - self._event_refreshed.get(key, 0.0)
            if since >= EVENT_STATUS_INTERVAL:
                self._event_refreshed[key] = time.monotonic()
                due.append(key)
            else:
                self._changed.add(key)
        if self._changed:
            asyncio.get_running_loop().call_later(0.2, self._changed_event.set)
        return due

    def list_changed(self, key: Key) -> None:
        """A keyspace event (or the work channel) named this session's list."""
        self._changed.add(key)
        self._changed_event.set()

    def record(self, readings: Mapping[Key, QueueReading]) -> set[Key]:
        """Keep the readings; a session that just got work is pushed to KEDA at once.
        Returns the sessions whose reading changed."""
        now = dt.datetime.now(dt.UTC)
        changed: set[Key] = set()
        for key, reading in readings.items():
            before = self.state.queues.get(key)
            self.state.queues[key] = reading
            if reading != before:
                changed.add(key)
            if reading.busy and not (before is not None and before.busy):
                self.push.work_arrived(key)
                # A wake is timed from here unless the session was already up. The
                # written phase, not replicas: KEDA may have scaled before we looked;
                # and the object's own after a takeover, before this replica wrote any.
                last = self.state.last_status(key)
                if last.get("phase") in (Phase.SLEEPING, Phase.WAKING):
                    # Or from when a leader before this one saw it begin.
                    began = parse_time(last.get("wakeStartedAt")) or now
                    self.state.wake_started.setdefault(key, began)
        return changed
