"""The controller: reconcile one session, react to its children and pods, act on each poll.

Called by the thin kopf handlers (handlers.py) and by the watches of kube/. Its
collaborators do the work: Children applies, StatusWriter writes status,
Finalizer cleans Redis and expires idle sessions, the Poller (wake/) reads the
queues. Everything here runs on the event loop; blocking calls go to threads.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from usersession_operator import metrics
from usersession_operator.builders import CHILD_KINDS, ChildKind
from usersession_operator.kube import watching
from usersession_operator.kube.client import ApiException, describe_api_error
from usersession_operator.kube.writes import Kube
from usersession_operator.queues.connections import RedisConnections
from usersession_operator.queues.targets import QueueTarget
from usersession_operator.reconcile.children import Children
from usersession_operator.reconcile.finalizer import Finalizer
from usersession_operator.reconcile.parsed import ParsedSessions
from usersession_operator.reconcile.statuswriter import StatusWriter
from usersession_operator.runtime.background import Background
from usersession_operator.session.model import FINALIZER, InvalidSession, Session
from usersession_operator.session.names import MANAGED_BY_SELECTOR
from usersession_operator.settings import OperatorSettings
from usersession_operator.state import ClusterState, Key, ReconcileResult
from usersession_operator.wake.poller import Poller

log = logging.getLogger(__name__)

# A session kopf has not handed to reconcile this long after it appeared gets
# reconciled by the poll (Controller.resync).
RESYNC_AFTER_SECONDS = 60.0


class Controller:
    def __init__(
        self,
        settings: OperatorSettings,
        kube: Kube,
        connections: RedisConnections,
        state: ClusterState | None = None,
        forget: Callable[[str], None] | None = None,
        resync_after: float = RESYNC_AFTER_SECONDS,
    ) -> None:
        """forget: drops what kopf remembers of a deleted object (its bookkeeping)."""
        self.settings = settings
        self.kube = kube
        self.state = state or ClusterState()
        self.connections = connections
        self.parsed = ParsedSessions(self.state, settings)
        self.children = Children(self.state, kube, lambda: self.children_synced)
        self.status = StatusWriter(self.state, kube, self.parsed)
        self.finalizer = Finalizer(
            settings, self.state, kube, connections, self.parsed, self.status
        )
        self.poller = Poller(self.state, connections)
        self.last_poll: float | None = None  # monotonic time of the last finished poll cycle
        # Set once the children's watches have listed everything: from then on a
        # child missing from the state is missing from the cluster.
        self.children_synced = False
        self.resync_after = resync_after
        self._forget = forget
        self._resyncing: set[Key] = set()
        self._background = Background("background work")  # restores, resyncs
        self._watches: list[watching.Watch] = []

    # -- start and stop ------------------------------------------------------

    async def start(self) -> None:
        """Learn every session, then every child and pod, before kopf hands over the
        first session: so that a restart finds its children as wanted and its
        statuses current, and writes nothing."""
        api_client = self.kube.api_client
        namespaces = self.settings.namespaces
        async for body in watching.list_all(api_client, watching.SESSION, namespaces):
            self.state.upsert_session(body)
        selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY_SELECTOR.items())
        feeds: list[tuple[watching.Resource, watching.Deliver]] = [
            (watching.Resource(k.kind, k.group, k.version, k.plural), self._child_feed(k))
            for k in CHILD_KINDS
        ]
        feeds.append((watching.POD, self.pod_seen))
        scopes: list[str | None] = list(namespaces) or [None]
        self._watches = [
            watching.Watch(api_client, resource, selector, namespace, deliver)
            for resource, deliver in feeds
            for namespace in scopes
        ]
        for watch in self._watches:
            watch.start()
        await asyncio.gather(*(watch.synced.wait() for watch in self._watches))
        self.children_synced = True
        log.info(
            "knew %d sessions and their children before handling any", len(self.state.sessions)
        )

    def _child_feed(self, kind: ChildKind) -> watching.Deliver:
        return lambda event_type, body: self.child_seen(kind, event_type, body)

    async def settle(self) -> None:
        """Wait until the background work events started (restores, refreshes) is done."""
        while True:
            await self._background.settle()
            await self.status.settle()
            if not self._background.busy:
                return

    async def close(self) -> None:
        for watch in self._watches:
            watch.stop()
        await self._background.close()
        await self.status.close()
        await self.poller.close()
        await self.connections.close()

    # -- reconcile -----------------------------------------------------------

    async def reconcile(self, body: Mapping[str, Any]) -> None:
        """Make the children match the spec, writing only those that differ.

        Level-based: after a restart every session is reconciled again, and one
        whose children are as wanted costs no write at all.
        """
        key = self.state.upsert_session(body)
        session = self.parsed.get(key)
        if isinstance(session, InvalidSession):
            self.poller.forget(key)
            self._reconciled(key, ReconcileResult(_generation(body), str(session)))
            await self.status.refresh(key)
            metrics.RECONCILES.labels("invalid").inc()
            raise kopf.PermanentError(str(session))
        started = time.monotonic()
        try:
            await self.children.apply_all(session)
        except ApiException as exc:
            message = describe_api_error(exc)
            self._reconciled(key, ReconcileResult(_generation(body), message))
            await self.status.refresh(key)
            metrics.RECONCILES.labels("error").inc()
            raise kopf.TemporaryError(message, delay=10) from exc
        metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
        metrics.RECONCILES.labels("ok").inc()
        target = QueueTarget.of(session, self.settings)
        self.poller.follow(key, target)
        if key not in self.state.queues and "queueDepth" not in (body.get("status") or {}):
            # A new session: read its lists now, so that its first status already
            # has the depth instead of a second write after the next poll.
            await self.poller.read({key: target})
        self._reconciled(key, ReconcileResult(session.generation))
        await self.status.refresh(key)

    def _reconciled(self, key: Key, result: ReconcileResult) -> None:
        self.state.reconciled[key] = result
        self.state.unreconciled.pop(key, None)

    async def finalize(self, body: Mapping[str, Any], runtime: dt.timedelta, retry: int) -> None:
        key = self.state.upsert_session(body)
        self.poller.forget(key)
        await self.finalizer.finalize(key, runtime, retry)

    def resync(self) -> None:
        """Reconcile the sessions kopf has not handed over a minute after they appeared.

        kopf acts on watch events. When the API server is overloaded a patch of
        kopf's can time out after it took effect, and the event kopf then waits
        for never comes: 309 of 10,000 sessions created at once were never
        reconciled. Reconcile is level-based, so running it here too is harmless;
        the finalizer stays kopf's to add, so a session without it is left to kopf.
        """
        now = time.monotonic()
        for key, seen in list(self.state.unreconciled.items()):
            body = self.state.sessions.get(key)
            if body is None or key in self._resyncing or now - seen < self.resync_after:
                continue
            meta = body.get("metadata") or {}
            if meta.get("deletionTimestamp") or FINALIZER not in (meta.get("finalizers") or []):
                continue
            log.info("UserSession %s/%s: not handed over by kopf; reconciling it", *key)
            self._resyncing.add(key)
            self._background.spawn(self._resync_one(key, body))

    async def _resync_one(self, key: Key, body: Mapping[str, Any]) -> None:
        try:
            await self.reconcile(body)
        except (kopf.PermanentError, kopf.TemporaryError) as exc:
            log.warning("UserSession %s/%s: reconcile failed: %s", *key, exc)
        finally:
            self._resyncing.discard(key)

    # -- watch events (on the loop) ----------------------------------------------

    def session_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if event_type == "DELETED":
            self.state.forget_session(key)
            self.status.forget(key)
            self.parsed.forget(key)
            self.poller.forget(key)
            if self._forget is not None:
                self._forget(str(meta.get("uid") or ""))
            return
        self.state.upsert_session(body)
        if meta.get("deletionTimestamp"):
            self.poller.forget(key)  # going away: its lists are the finalizer's now

    def child_seen(self, kind: ChildKind, event_type: str, body: Mapping[str, Any]) -> None:
        """Record a child; restore it if it drifted or went; refresh its session's status."""
        self.state.record_child(self.children.tables[kind], body, event_type == "DELETED")
        key = self.state.session_for_child(body)
        if key is None:
            return
        session = self.parsed.live(key)
        if session is not None and self.children.seen(kind, session, event_type, body):
            self._background.spawn(self._restore(kind, session, body))
        self.status.schedule(key)

    async def _restore(self, kind: ChildKind, session: Session, body: Mapping[str, Any]) -> None:
        await self.children.restore(kind, session, body)
        await self.status.refresh_settled(session.key)

    def pod_seen(self, event_type: str, body: Mapping[str, Any]) -> None:
        self.state.record_pod(body, deleted=event_type == "DELETED")
        key = self.state.session_for_child(body)
        if key is not None:
            self.status.schedule(key)

    # -- the poll --------------------------------------------------------------------

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
        """Read every session's lists, then write the statuses that may have changed,
        expire idle sessions and reconcile those kopf never handed over."""
        changed = await self.poller.poll_once()
        due = [k for k in self.state.sessions if k in changed or self.status.time_matters(k)]
        await self.status.refresh_many(due)
        # After the refresh: expiry trusts only statuses that include this poll.
        await self.finalizer.expire_idle()
        self.resync()
        phases = [s.get("phase") for s in self.state.written_status.values()]
        for phase in metrics.PHASES:
            metrics.SESSIONS.labels(phase).set(phases.count(phase))
        self.last_poll = time.monotonic()

    async def react_forever(self) -> None:
        """Status within a second of a keyspace event, written beside the reactor."""
        async for keys in self.poller.reactions():
            for key in keys:
                self.status.spawn(key)


def _generation(body: Mapping[str, Any]) -> int:
    """The generation a reconcile acted on, whether it worked or not: status reports on it."""
    return int(body.get("metadata", {}).get("generation") or 0)
