"""The watch-backed cache's resync logic, against a scripted stand-in for the API server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from kubernetes import client
from kubernetes.client import ApiException

from usersession_localstack.loopback import wait_for
from usersession_operator.sessionapi.cache import SessionCache


def _obj(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": rv}, "spec": {"userId": "u"}}


class _Stream:
    def __init__(self, events: list[dict[str, Any]], hold: threading.Event | None) -> None:
        self._lines = [json.dumps(e).encode() + b"\n" for e in events]
        self._hold = hold

    def __iter__(self) -> Iterator[bytes]:
        yield from self._lines
        if self._hold is not None:  # the last watch stays open, with nothing new, until shut down
            self._hold.wait(5)

    def shutdown(self) -> None:
        if self._hold is not None:
            self._hold.set()

    def release_conn(self) -> None:
        pass


class _Server:
    """Answers lists and watches from a script, recording what was asked."""

    def __init__(self, lists: list[dict[str, Any]], watches: list[Any]) -> None:
        self.lists, self.watches = lists, watches
        self.calls: list[tuple[str, str | None]] = []
        self.hold = threading.Event()

    def list_namespaced_custom_object(self, *_: Any, **kwargs: Any) -> Any:
        if not kwargs.get("watch"):
            self.calls.append(("list", None))
            return self.lists.pop(0) if len(self.lists) > 1 else self.lists[0]
        self.calls.append(("watch", kwargs["resource_version"]))
        step = self.watches.pop(0) if self.watches else []
        if isinstance(step, Exception):
            raise step
        # Earlier watches end (as the server's timeoutSeconds ends them); the last stays open.
        return _Stream(step, None if self.watches else self.hold)


def _cache(server: _Server) -> SessionCache:
    cache = SessionCache(client.ApiClient(), "ns")
    cache._custom = server  # type: ignore[assignment]
    return cache


def _listing(rv: str, *names: str) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": rv}, "items": [_obj(n, rv) for n in names]}


def test_events_update_the_cache_and_410_gone_lists_again() -> None:
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}
    server = _Server(
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
    cache = _cache(server)
    cache.start()
    try:
        started = time.monotonic()
        wait_for(lambda: len(server.calls) >= 5, timeout=5)
        assert server.calls[:5] == [
            ("list", None),
            ("watch", "10"),
            ("watch", "20"),  # resumed from the bookmark: no relist needed
            ("list", None),  # 410 Gone: the version is too old, so list again
            ("watch", "30"),
        ]
        assert sorted(o["metadata"]["name"] for o in cache.all()) == ["b", "c"]
    finally:
        cache.stop()
    assert time.monotonic() - started < 2, "stop() must interrupt the open watch"


def test_a_410_answer_to_the_watch_request_also_lists_again() -> None:
    server = _Server(
        lists=[_listing("5", "a"), _listing("9", "z")],
        watches=[ApiException(status=410, reason="Gone"), []],
    )
    cache = _cache(server)
    cache.start()
    try:
        wait_for(lambda: len(server.calls) >= 4, timeout=5)
        assert [c[0] for c in server.calls[:4]] == ["list", "watch", "list", "watch"]
        assert cache.get("z") is not None
        assert cache.get("a") is None
    finally:
        cache.stop()


def test_reads_before_the_first_list_are_503() -> None:
    cache = SessionCache(client.ApiClient(), "ns")
    try:
        cache.get("a")
    except Exception as exc:
        assert getattr(exc, "status", None) == 503
    else:
        raise AssertionError("an unsynced cache answered")
