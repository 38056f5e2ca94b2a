"""Where the operator watches its children and their pods: list, then watch, by label.

kopf's watches carry no label selector (it filters labels in the client), so
every Pod and Deployment in scope would be listed, streamed and remembered by
this process. These watches ask the API server for the operator's managed-by
label only, so objects that are not the operator's cost nothing here.

Each watch runs in a thread with the official client (blocking I/O, like every
other call in kube/), decodes objects as plain dicts, keeps nothing but their
names, and hands each event to a callback on the event loop. `synced` is set
once the first listing has been delivered: from then on, an object absent from
the operator's state is absent from the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from usersession_operator.backoff import Backoff
from usersession_operator.kube.client import ApiClient, ApiException, describe
from usersession_operator.session.model import GROUP, KIND, PLURAL, VERSION

log = logging.getLogger(__name__)

# (event type, object): "ADDED", "MODIFIED" or "DELETED", as the API server says.
Deliver = Callable[[str, dict[str, Any]], None]

PAGE = 500  # objects per list page: bounds the memory a listing of thousands takes
WATCH_SECONDS = 290  # the server ends a watch after this; it is resumed where it stopped
_BACKOFF = Backoff(first=1.0, ceiling=30.0)  # a failed list or watch, before the next


@dataclass(frozen=True)
class Resource:
    """A kind to watch: its name for logs, and how to list it (all namespaces or one)."""

    kind: str
    group: str  # "" for the core group
    version: str
    plural: str

    def lister(self, api_client: ApiClient, namespace: str | None) -> Callable[..., Any]:
        if self.group:
            custom = client.CustomObjectsApi(api_client)
            if namespace is None:
                return lambda **kw: custom.list_cluster_custom_object(
                    self.group, self.version, self.plural, **kw
                )
            return lambda **kw: custom.list_namespaced_custom_object(
                self.group, self.version, namespace, self.plural, **kw
            )
        typed: Any = client.AppsV1Api(api_client) if self.plural == "deployments" else None
        typed = typed or client.CoreV1Api(api_client)
        singular = {
            "deployments": "deployment",
            "pods": "pod",
            "persistentvolumeclaims": "persistent_volume_claim",
        }[self.plural]
        if namespace is None:
            method = getattr(typed, f"list_{singular}_for_all_namespaces")
            return lambda **kw: method(**kw)
        method = getattr(typed, f"list_namespaced_{singular}")
        return lambda **kw: method(namespace, **kw)


POD = Resource("Pod", "", "v1", "pods")
SESSION = Resource(KIND, GROUP, VERSION, PLURAL)


class _Expired(Exception):
    """The resource version to resume from is too old (410 Gone): list again."""


class Watch:
    """List-then-watch of one kind in one namespace (or all), selected by label."""

    def __init__(
        self,
        api_client: ApiClient,
        resource: Resource,
        label_selector: str | None,
        namespace: str | None,
        deliver: Deliver,
        watch_seconds: int = WATCH_SECONDS,
        lister: Callable[..., Any] | None = None,
    ) -> None:
        """lister: how to list and watch (the resource's own, from the client, unless
        given: tests script the API server's answers with one)."""
        self.resource = resource
        self.watch_seconds = watch_seconds
        # Why the last list or watch failed, until the next listing works.
        self.last_error: str | None = None
        self.label_selector = label_selector
        self.namespace = namespace
        self._list = lister or resource.lister(api_client, namespace)
        self._deliver = deliver
        self._loop: asyncio.AbstractEventLoop | None = None
        self.synced = asyncio.Event()
        self._stopping = threading.Event()
        self._response: Any = None
        # namespace/name of every object delivered and not deleted: a relisting
        # (after the watch expired) reports the ones that went meanwhile.
        self._known: dict[str, set[str]] = {}  # namespace -> names
        self._thread = threading.Thread(
            target=self._run, name=f"watch-{resource.plural}", daemon=True
        )

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stopping.set()
        response = self._response
        if response is not None:
            # Unblocks the thread's read; it then sees _stopping and ends.
            with contextlib.suppress(Exception):  # closed already
                response.shutdown()

    # -- the thread ------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                version = self._relist()
                failures = 0
                while not self._stopping.is_set():
                    version = self._watch(version)
            except _Expired:
                continue
            except Exception as exc:
                if self._stopping.is_set():
                    return
                self.last_error = describe(exc)
                failures += 1
                backoff = _BACKOFF.delay(failures)
                log.warning(
                    "watching %s failed (%s); retrying in %.0fs",
                    self.resource.plural,
                    self.last_error,
                    backoff,
                )
                self._stopping.wait(backoff)

    def _relist(self) -> str:
        seen: dict[str, set[str]] = {}
        version = ""
        for page in pages(self._list, self.label_selector):
            for item in page.get("items") or []:
                namespace, name = _name(item)
                seen.setdefault(namespace, set()).add(name)
                self._send("ADDED", item)
            version = str(page["metadata"]["resourceVersion"])
            del page
            # Not a page ahead of the loop: events queued for it hold whole
            # objects, and a listing of thousands would otherwise sit in memory
            # at once (memory the allocator then rarely gives back).
            self._caught_up()
        for namespace, names in self._known.items():
            for name in names - seen.get(namespace, set()):
                self._send("DELETED", {"metadata": {"namespace": namespace, "name": name}})
        self._known = seen
        self.last_error = None
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.synced.set)
        return version

    def _watch(self, version: str) -> str:
        try:
            self._response = self._list(
                label_selector=self.label_selector,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=self.watch_seconds,
                watch=True,
                _preload_content=False,
                _request_timeout=(10, self.watch_seconds + 30),
            )
        except ApiException as exc:
            if exc.status == 410:  # too old to resume from: list again
                raise _Expired() from None
            raise
        try:
            for event in _events(self._response):
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise _Expired()
                    raise RuntimeError(obj.get("message") or "watch error")
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind == "BOOKMARK":
                    continue
                namespace, name = _name(obj)
                if kind == "DELETED":
                    self._known.get(namespace, set()).discard(name)
                else:
                    self._known.setdefault(namespace, set()).add(name)
                self._send(str(kind), obj)
        finally:
            response, self._response = self._response, None
            response.release_conn()
        return version

    def _caught_up(self) -> None:
        """Wait until the loop has handled everything sent so far."""
        if self._loop is None:
            return
        handled = threading.Event()
        self._loop.call_soon_threadsafe(handled.set)
        while not handled.wait(1.0):
            if self._stopping.is_set() or self._loop.is_closed():
                return

    def _send(self, kind: str, obj: dict[str, Any]) -> None:
        if self._loop is not None and not self._stopping.is_set():
            self._loop.call_soon_threadsafe(self._deliver, kind, obj)


def pages(lister: Callable[..., Any], label_selector: str | None) -> Iterator[dict[str, Any]]:
    """A listing, a page at a time (blocking)."""
    token: str | None = None
    while True:
        response = lister(
            label_selector=label_selector, limit=PAGE, _continue=token, _preload_content=False
        )
        page: dict[str, Any] = json.loads(response.data)
        yield page
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


async def list_all(
    api_client: ApiClient, resource: Resource, namespaces: Sequence[str]
) -> AsyncIterator[dict[str, Any]]:
    """Every object of a kind in these namespaces (none: all), a page at a time, each
    page fetched in a thread: thousands of objects never sit in memory at once."""
    scopes: list[str | None] = list(namespaces) or [None]
    for namespace in scopes:
        listing = pages(resource.lister(api_client, namespace), None)
        while (page := await asyncio.to_thread(next, listing, None)) is not None:
            for item in page.get("items") or []:
                yield item


def _events(response: Any) -> Iterator[dict[str, Any]]:
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)


def _name(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    # Interned: every watch of a session's kinds holds its name, and one copy serves.
    return sys.intern(str(meta.get("namespace") or "")), sys.intern(str(meta.get("name") or ""))
