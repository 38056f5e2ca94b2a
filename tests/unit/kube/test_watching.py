"""List-then-watch against a scripted API server: resuming, 410 Gone, deletions, stop.

The real API server's side is in tests/integration/kube/test_watching.py.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from usersession_operator.kube import watching
from usersession_operator.kube.client import ApiClient, ApiException
from usersession_operator.sessionapi.cache import SessionCache


def _obj(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}, "spec": {}}


class _Page:
    def __init__(self, listing: dict[str, Any]) -> None:
        self.data = json.dumps(listing).encode()


class _Stream:
    def __init__(self, events: list[dict[str, Any]], hold: threading.Event | None) -> None:
        self._lines = [json.dumps(e).encode() + b"\n" for e in events]
        self._hold = hold

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield from self._lines
        if self._hold is not None:  # the last watch stays open, with nothing new, until shut down
            self._hold.wait(5)

    def shutdown(self) -> None:
        if self._hold is not None:
            self._hold.set()

    def release_conn(self) -> None:
        pass


class Server:
    """Answers lists and watches from a script, recording what was asked."""

    def __init__(self, lists: list[dict[str, Any]], watches: list[Any]) -> None:
        self.lists, self.watches = lists, watches
        self.calls: list[tuple[str, str | None]] = []
        self.hold = threading.Event()

    def __call__(self, **kwargs: Any) -> Any:
        if not kwargs.get("watch"):
            self.calls.append(("list", None))
            return _Page(self.lists.pop(0) if len(self.lists) > 1 else self.lists[0])
        self.calls.append(("watch", kwargs["resource_version"]))
        step = self.watches.pop(0) if self.watches else []
        if isinstance(step, Exception):
            raise step
        # Earlier watches end (as the server's timeoutSeconds ends them); the last stays open.
        return _Stream(step, None if self.watches else self.hold)


def _listing(rv: str, *names: str) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": rv}, "items": [_obj(n, rv) for n in names]}


async def _until(condition: Any, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_events_arrive_and_410_gone_lists_again_reporting_what_went() -> None:
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}
    server = Server(
        lists=[_listing("10", "a", "b"), _listing("30", "b", "c")],
        watches=[
            [
                {"type": "ADDED", "object": _obj("x", "11")},
                {"type": "DELETED", "object": _obj("a", "12")},
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "20"}}},
            ],
            [gone],
            [],
        ],
    )
    events: list[tuple[str, str]] = []

    async def main() -> None:
        watch = watching.Watch(
            ApiClient(),
            watching.SESSION,
            None,
            "ns",
            lambda kind, obj: events.append((kind, obj["metadata"]["name"])),
            lister=server,
        )
        watch.start()
        started = time.monotonic()
        try:
            await _until(lambda: len(server.calls) >= 5)
            await asyncio.wait_for(watch.synced.wait(), 1)
        finally:
            watch.stop()
        await _until(lambda: not watch.running, 2)  # stop() interrupts the open watch
        assert time.monotonic() - started < 3

    asyncio.run(main())
    assert server.calls[:5] == [
        ("list", None),
        ("watch", "10"),
        ("watch", "20"),  # resumed from the bookmark: no relist needed
        ("list", None),  # 410 Gone: the version is too old, so list again
        ("watch", "30"),
    ]
    assert events[:4] == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "x"), ("DELETED", "a")]
    # The relisting: b and c are there; x went while the watch was gone.
    assert sorted(events[4:]) == [("ADDED", "b"), ("ADDED", "c"), ("DELETED", "x")]


def test_a_410_answer_to_the_watch_request_also_lists_again() -> None:
    server = Server(
        lists=[_listing("5", "a"), _listing("9", "z")],
        watches=[ApiException(status=410, reason="Gone"), []],
    )

    async def main() -> None:
        cache = SessionCache(ApiClient(), "ns", lister=server)
        cache.start()
        try:
            await _until(lambda: len(server.calls) >= 4)
            await _until(lambda: cache.get("z") is not None)
            assert [c[0] for c in server.calls[:4]] == ["list", "watch", "list", "watch"]
            assert cache.get("a") is None
        finally:
            cache.stop()

    asyncio.run(main())


def test_reads_before_the_first_list_are_503() -> None:
    async def main() -> None:
        cache = SessionCache(ApiClient(), "ns")
        try:
            cache.get("a")
        except Exception as exc:
            assert getattr(exc, "status", None) == 503
        else:
            raise AssertionError("an unsynced cache answered")

    asyncio.run(main())
