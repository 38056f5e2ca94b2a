"""The sessions waiting to be handled, and the few workers that handle them.

Like client-go's workqueue: a key is handled by one worker at a time; a key
added while it is being handled is handled once more afterwards; a retry waits
on a timer; a key added twice before a worker gets to it is handled once. A
takeover that lists ten thousand sessions queues ten thousand keys, not ten
thousand tasks: memory and API calls in flight stay bounded by the workers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from usersession_operator.backoff import Backoff
from usersession_operator.state import Key

log = logging.getLogger(__name__)

# key -> None when done, or seconds until it is to be handled again.
Handle = Callable[[Key], Awaitable[float | None]]

# After an unexpected failure: about 1 s, doubling per failure of the same key, to 5 min.
BUG_RETRY = Backoff(first=1.0, ceiling=300.0)


class RetryLater(Exception):
    """Raised by a handler's part to ask for the key again after `delay` seconds."""

    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


class WorkQueue:
    def __init__(self, handle: Handle, workers: int) -> None:
        self._handle = handle
        self._workers = workers
        self._ready: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()  # in _ready, not yet taken
        self._active: set[Key] = set()  # being handled
        self._again: set[Key] = set()  # added while being handled
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._failures: dict[Key, int] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def __len__(self) -> int:
        """Keys waiting for a worker (retries on a timer not counted)."""
        return len(self._queued)

    @property
    def idle(self) -> bool:
        return not (self._queued or self._active or self._again)

    def add(self, key: Key, delay: float = 0.0) -> None:
        """Handle key soon, or after delay seconds; the earlier of two requests wins."""
        timer = self._timers.get(key)
        if delay > 0:
            loop = asyncio.get_running_loop()
            if timer is not None and timer.when() <= loop.time() + delay:
                return
            if timer is not None:
                timer.cancel()
            self._timers[key] = loop.call_later(delay, self._due, key)
            return
        if timer is not None:
            timer.cancel()
            del self._timers[key]
        self._enqueue(key)

    def forget(self, key: Key) -> None:
        """A key gone for good: no retry is left waiting for it."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._failures.pop(key, None)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(), name=f"session-worker-{i}")
            for i in range(self._workers)
        ]

    async def settle(self) -> None:
        """Until nothing is queued or being handled (retries on timers aside)."""
        while not self.idle:
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _due(self, key: Key) -> None:
        self._timers.pop(key, None)
        self._enqueue(key)

    def _enqueue(self, key: Key) -> None:
        if key in self._active:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._ready.put_nowait(key)

    async def _work(self) -> None:
        while True:
            key = await self._ready.get()
            self._queued.discard(key)
            self._active.add(key)
            delay: float | None
            try:
                delay = await self._handle(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug for one session must not stop the others
                failures = self._failures[key] = self._failures.get(key, 0) + 1
                delay = BUG_RETRY.delay(failures)
                log.exception("handling UserSession %s/%s failed; again in %.0fs", *key, delay)
            finally:
                self._active.discard(key)
            if key in self._again:
                self._again.discard(key)
                self.add(key)
            elif delay is not None:
                self.add(key, delay)
