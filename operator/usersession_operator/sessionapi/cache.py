"""The session API's reads: one namespace's UserSessions, kept by kube/'s list+watch.

Reads for `status` and `sessions` never go to the API server. Until the first
listing has arrived every read is a 503 naming why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from usersession_operator.kube import watching
from usersession_operator.kube.client import ApiClient
from usersession_operator.sessionapi.errors import kubernetes_unavailable

# Server-side end of one watch request; it then resumes from the last
# resourceVersion it saw, which costs no relist.
WATCH_SECONDS = 60


class SessionCache:
    def __init__(
        self,
        api_client: ApiClient,
        namespace: str,
        lister: Callable[..., Any] | None = None,
    ) -> None:
        self._objects: dict[str, dict[str, Any]] = {}
        self._watch = watching.Watch(
            api_client,
            watching.SESSION,
            None,
            namespace,
            self._deliver,
            watch_seconds=WATCH_SECONDS,
            lister=lister,
        )

    @property
    def synced(self) -> asyncio.Event:
        return self._watch.synced

    @property
    def last_error(self) -> str | None:
        return self._watch.last_error

    def start(self) -> None:
        """On the event loop that serves the API: the watch delivers there."""
        self._watch.start()

    def stop(self) -> None:
        self._watch.stop()

    def get(self, name: str) -> dict[str, Any] | None:
        self._require_synced()
        return self._objects.get(name)

    def all(self) -> list[dict[str, Any]]:
        self._require_synced()
        return list(self._objects.values())

    def remember(self, obj: Mapping[str, Any]) -> None:
        """Show an object just created by this process before its watch event arrives."""
        self._objects.setdefault(obj["metadata"]["name"], dict(obj))

    def _require_synced(self) -> None:
        if not self.synced.is_set():
            reason = self.last_error or "the session cache has not finished its first list"
            raise kubernetes_unavailable(reason)

    def _deliver(self, event_type: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if event_type == "DELETED":
            self._objects.pop(name, None)
        else:
            self._objects[name] = obj
