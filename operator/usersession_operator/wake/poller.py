"""Where queue depths come from, and how KEDA hears of work at once.

One poll loop reads every session's queue and processing list in one
pipelined read per Redis server (a thousand sessions per round trip) and
refreshes the statuses that may have changed. Between
polls, keyspace notifications (notifications.py) name the lists that changed;
those are read at once, status follows within a second, and a session that just
got work is pushed to KEDA through the external-push scaler (pushscaler.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping

from usersession_operator import metrics
from usersession_operator.queues.connections import QueueTarget, RedisQueues
from usersession_operator.queues.keyspace import KeyspaceWatcher
from usersession_operator.runtime.background import Background
from usersession_operator.session.model import Session
from usersession_operator.settings import OperatorSettings
from usersession_operator.state import ClusterState, Key, QueueReading
from usersession_operator.status.compute import Phase
from usersession_operator.wake.pushscaler import PushScaler

log = logging.getLogger(__name__)

# A session's status is written at most this often because of keyspace events;
# the regular poll and watch events are not limited.
EVENT_STATUS_INTERVAL = 1.0
# Status refreshes a poll runs side by side.
REFRESH_BATCH = 32


class Poller:
    def __init__(
        self,
        settings: OperatorSettings,
        state: ClusterState,
        queues: RedisQueues,
        live_session: Callable[[Key], Session | None],
        refresh_status: Callable[[Key], Awaitable[None]],
        expire_idle: Callable[[], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.state = state
        self.queues = queues
        self.live_session = live_session
        self.refresh_status = refresh_status
        self.expire_idle = expire_idle
        self.push = PushScaler(state)
        self.watcher = KeyspaceWatcher(queues.connections, self._list_changed)
        self.last_poll: float | None = None  # monotonic time of the last finished poll cycle
        self._changed: set[Key] = set()  # lists a keyspace event named, not read yet
        self._changed_event = asyncio.Event()
        self._event_refreshed: dict[Key, float] = {}
        # Status writes run beside the reactor, never in front of it: an event for
        # one session must not wait for another's write (or the poll's) to push.
        self._writes = Background("status refresh")

    def follow(self, key: Key, target: QueueTarget) -> None:
        """A new session: listen to its lists now, not from the next poll."""
        self.watcher.add(key, target)

    def forget(self, key: Key) -> None:
        self._event_refreshed.pop(key, None)

    async def close(self) -> None:
        await self._writes.close()
        await self.watcher.close()

    async def poll_forever(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.poll_once()
            except Exception:  # a bug here must not stop polling for good
                log.exception("poll cycle failed")
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.0, self.settings.poll_interval_seconds - elapsed))

    async def poll_once(self) -> None:
        targets = self._targets(list(self.state.sessions))
        started = time.monotonic()
        readings = await self.queues.depths(targets)
        metrics.REDIS_POLL_SECONDS.observe(time.monotonic() - started)
        metrics.REDIS_POLL_ERRORS.inc(sum(1 for r in readings.values() if r.error))
        changed = self._record(readings)
        metrics.QUEUE_DEPTH.set(sum(r.depth or 0 for r in readings.values()))
        metrics.PROCESSING_DEPTH.set(sum(r.processing or 0 for r in readings.values()))
        self.watcher.sync(targets)
        due = [key for key in self.state.sessions if key in changed or self._time_matters(key)]
        for batch in _batches(due, REFRESH_BATCH):
            # A batch at a time, so thousands of sessions neither hold the event
            # loop for long nor queue thousands of writes at once.
            await asyncio.gather(*(self.refresh_status(key) for key in batch))
        # After the refresh: expiry trusts only statuses that include this poll.
        await self.expire_idle()
        phases = [s.get("phase") for s in self.state.written_status.values()]
        for phase in metrics.PHASES:
            metrics.SESSIONS.labels(phase).set(phases.count(phase))
        self.last_poll = time.monotonic()

    async def read(self, targets: Mapping[Key, QueueTarget]) -> None:
        """Read some sessions' lists now (a new session's), outside the poll cycle."""
        self._record(await self.queues.depths(targets))

    def _time_matters(self, key: Key) -> bool:
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

    async def react_forever(self) -> None:
        """Read the lists keyspace events named, push work to KEDA, refresh status."""
        while True:
            await self._changed_event.wait()
            self._changed_event.clear()
            try:
                await self._react()
            except Exception:  # a bug here must not stop the fast path for good
                log.exception("reacting to keyspace events failed")

    async def _react(self) -> None:
        keys, self._changed = self._changed, set()
        targets = self._targets(keys)
        self._record(await self.queues.depths(targets))  # pushes work to KEDA at once
        for key in targets:
            # Status follows within a second, but a chatty session costs at most
            # one write a second; its lists are read again until then.
            since = time.monotonic() - self._event_refreshed.get(key, 0.0)
            if since >= EVENT_STATUS_INTERVAL:
                self._event_refreshed[key] = time.monotonic()
                self._writes.spawn(self.refresh_status(key))
            else:
                self._changed.add(key)
        if self._changed:
            asyncio.get_running_loop().call_later(0.2, self._changed_event.set)

    def _list_changed(self, key: Key) -> None:
        self._changed.add(key)
        self._changed_event.set()

    def _targets(self, keys: Iterable[Key]) -> dict[Key, QueueTarget]:
        targets: dict[Key, QueueTarget] = {}
        for key in keys:
            session = self.live_session(key)
            if session is not None:
                targets[key] = QueueTarget.of(session, self.settings)
        return targets

    def _record(self, readings: Mapping[Key, QueueReading]) -> set[Key]:
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
                # written phase, not replicas: KEDA may have scaled before we looked.
                phase = self.state.written_status.get(key, {}).get("phase")
                if phase in (Phase.SLEEPING, Phase.WAKING):
                    self.state.wake_started.setdefault(key, now)
        return changed


def _batches(keys: list[Key], size: int) -> Iterator[list[Key]]:
    for start in range(0, len(keys), size):
        yield keys[start : start + size]
