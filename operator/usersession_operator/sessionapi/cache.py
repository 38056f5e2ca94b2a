"""The session API's reads: a watch-backed cache of one namespace's UserSessions.

Reads for `status` and `sessions` never go to the API server: a background
thread lists the namespace's UserSessions once, then follows a watch from that
resourceVersion, and lists again when the server answers 410 Gone (the version
fell out of its history) or the connection breaks.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client import ApiException

from usersession_operator.session.model import GROUP, PLURAL, VERSION
from usersession_operator.sessionapi.errors import kubernetes_unavailable
from usersession_operator.sessionapi.store import REQUEST_TIMEOUT, describe_failure

log = logging.getLogger(__name__)

# Server-side end of one watch request; the thread then continues from the
# last resourceVersion it saw, which costs no relist.
WATCH_SECONDS = 60


class _Gone(Exception):
    """The watch's resourceVersion is too old: list again."""


class SessionCache:
    """UserSessions of one namespace, kept current by a list + watch thread."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self._custom = client.CustomObjectsApi(api_client)
        self._namespace = namespace
        self._objects: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, name="usersession-watch", daemon=True)
        self.synced = threading.Event()
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            # Unblocks the thread's read of the open watch at once.
            response.shutdown()
        self._thread.join(timeout=5)

    # -- reads -------------------------------------------------------------

    def get(self, name: str) -> dict[str, Any] | None:
        self._require_synced()
        with self._lock:
            return self._objects.get(name)

    def all(self) -> list[dict[str, Any]]:
        self._require_synced()
        with self._lock:
            return list(self._objects.values())

    def remember(self, obj: Mapping[str, Any]) -> None:
        """Show an object just created by this process before its watch event arrives."""
        name = obj["metadata"]["name"]
        with self._lock:
            self._objects.setdefault(name, dict(obj))

    def _require_synced(self) -> None:
        if not self.synced.is_set():
            reason = self.last_error or "the session cache has not finished its first list"
            raise kubernetes_unavailable(reason)

    # -- the watch thread --------------------------------------------------

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                version = self._list()
                backoff = 0.5
                while not self._stop.is_set():
                    version = self._watch(version)
            except _Gone:
                log.info("UserSession watch expired (410 Gone); listing again")
                continue
            except Exception as exc:  # API down, network cut: keep serving what we have
                if self._stop.is_set():
                    return
                self.last_error = describe_failure(exc)
                log.warning(
                    "UserSession watch failed: %s; retrying in %.1fs", self.last_error, backoff
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def _list(self) -> str:
        listing: Any = self._custom.list_namespaced_custom_object(
            GROUP, VERSION, self._namespace, PLURAL, _request_timeout=REQUEST_TIMEOUT
        )
        objects = {item["metadata"]["name"]: item for item in listing.get("items", [])}
        with self._lock:
            self._objects = objects
        self.last_error = None
        self.synced.set()
        return str(listing["metadata"]["resourceVersion"])

    def _watch(self, version: str) -> str:
        try:
            response: Any = self._custom.list_namespaced_custom_object(
                GROUP,
                VERSION,
                self._namespace,
                PLURAL,
                watch=True,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_SECONDS,
                _preload_content=False,
                _request_timeout=(REQUEST_TIMEOUT[0], WATCH_SECONDS + 30),
            )
        except ApiException as exc:
            if exc.status == 410:
                raise _Gone from None
            raise
        self._response = response
        try:
            # urllib3 yields the stream line by line; the API server sends one event a line.
            for line in response:
                if line.strip():
                    version = self._apply(json.loads(line), version)
        finally:
            self._response = None
            response.release_conn()
        return version

    def _apply(self, event: Mapping[str, Any], version: str) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone
            raise RuntimeError(f"watch error: {obj.get('message') or obj}")
        metadata = obj.get("metadata") or {}
        if kind != "BOOKMARK":
            with self._lock:
                if kind == "DELETED":
                    self._objects.pop(metadata["name"], None)
                else:
                    self._objects[metadata["name"]] = obj
        return str(metadata.get("resourceVersion") or version)
