"""The controller: reconcile one session, react to its children and pods, act on each poll.

Sessions arrive from a list+watch of their own (kube/watching.py), like the
children: kopf's per-object machinery would hold every session's body, a task
and a worker each, which at a takeover of thousands of sessions was most of the
operator's memory. A work queue (queue.py) hands each session that needs it to
one of a few workers: add the finalizer, reconcile a new generation, or clean up
a deleted session and let it go. Collaborators do the work: Children applies,
StatusWriter writes status, Finalizer cleans Redis and expires idle sessions,
the Poller (wake/) reads the queues. Everything here runs on the event loop;
blocking calls go to threads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from usersession_operator import metrics
from usersession_operator.builders import CHILD_KINDS, ChildKind
from usersession_operator.kube import watching
from usersession_operator.kube.writes import Kube
from usersession_operator.queues.connections import RedisConnections
from usersession_operator.reconcile.children import Children
from usersession_operator.reconcile.finalizer import Finalizer
from usersession_operator.reconcile.handler import SessionHandler, needs_handling
from usersession_operator.reconcile.parsed import ParsedSessions
from usersession_operator.reconcile.queue import WorkQueue
from usersession_operator.reconcile.statuswriter import StatusWriter
from usersession_operator.runtime.background import Background
from usersession_operator.runtime.budget import Capacity
from usersession_operator.session.model import Session
from usersession_operator.session.names import MANAGED_BY_SELECTOR
from usersession_operator.settings import OperatorSettings
from usersession_operator.state import ClusterState
from usersession_operator.wake.poller import Poller

log = logging.getLogger(__name__)


class Controller:
    def __init__(
        self,
        settings: OperatorSettings,
        kube: Kube,
        connections: RedisConnections,
        state: ClusterState | None = None,
    ) -> None:
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
        self.capacity = Capacity(settings.capacity)
        self.handler = SessionHandler(
            settings,
            self.state,
            kube,
            self.parsed,
            self.children,
            self.status,
            self.finalizer,
            self.poller,
        )
        self.queue = WorkQueue(self.handler.handle, settings.workers)
        self.last_poll: float | None = None  # monotonic time of the last finished poll cycle
        # Set once the children's watches have listed everything: from then on a
        # child missing from the state is missing from the cluster.
        self.children_synced = False
        self._background = Background("background work")  # drift restores
        self._watches: list[watching.Watch] = []

    # -- start and stop ------------------------------------------------------

    async def start(self) -> None:
        """Learn every session, then every child and pod, then handle every session once:
        a restart finds its children as wanted and its statuses current, and writes
        nothing (level-based). Sessions first: a child is judged against its session's
        wanted manifest when it arrives, which needs the session known."""
        api_client = self.kube.api_client
        selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY_SELECTOR.items())
        scopes: list[str | None] = list(self.settings.namespaces) or [None]
        feeds: list[tuple[watching.Resource, watching.Deliver]] = [
            *(
                (watching.Resource(k.kind, k.group, k.version, k.plural), self._feed(k))
                for k in CHILD_KINDS
            ),
            (watching.POD, self.pod_seen),
        ]
        sessions = [
            watching.Watch(api_client, watching.SESSION, None, ns, self.session_event)
            for ns in scopes
        ]
        children = [
            watching.Watch(api_client, resource, selector, ns, deliver)
            for resource, deliver in feeds
            for ns in scopes
        ]
        self._watches = sessions + children
        for watch in sessions:
            watch.start()
        await asyncio.gather(*(watch.synced.wait() for watch in sessions))
        for watch in children:
            watch.start()
        await asyncio.gather(*(watch.synced.wait() for watch in children))
        self.children_synced = True
        for key in self.state.sessions:
            self.queue.add(key)
        self.queue.start()
        log.info(
            "knew %d sessions and their children before handling any", len(self.state.sessions)
        )

    def _feed(self, kind: ChildKind) -> watching.Deliver:
        return lambda event_type, body: self.child_seen(kind, event_type, body)

    async def settle(self) -> None:
        """Until the work events started (handling, restores, refreshes) is done."""
        while True:
            await self.queue.settle()
            await self._background.settle()
            await self.status.settle()
            if self.queue.idle and not self._background.busy:
                return

    async def close(self) -> None:
        for watch in self._watches:
            watch.stop()
        await self.queue.close()
        await self._background.close()
        await self.status.close()
        await self.poller.close()
        await self.connections.close()

    # -- sessions ------------------------------------------------------------------

    def session_event(self, event_type: str, body: Mapping[str, Any]) -> None:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if event_type == "DELETED":
            self.state.forget_session(key)
            self.status.forget(key)
            self.parsed.forget(key)
            self.poller.forget(key)
            self.queue.forget(key)
            self.handler.forget(key)
            return
        self.state.upsert_session(body)
        if meta.get("deletionTimestamp"):
            self.poller.forget(key)  # going away: its lists are the finalizer's now
        if needs_handling(self.state, key):
            self.queue.add(key)

    # -- children's and pods' events (on the loop) -------------------------------

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
        """Read every session's lists, then write the statuses that may have changed
        and expire idle sessions."""
        changed = await self.poller.poll_once()
        await self.status.refresh_many(changed | self.status.clocked)
        # After the refresh: expiry trusts only statuses that include this poll.
        await self.finalizer.expire_idle()
        phases = Counter(s.get("phase") for s in self.state.written_status.values())
        for phase in metrics.PHASES:
            metrics.SESSIONS.labels(phase).set(phases[phase])
        metrics.WORK_QUEUE.set(len(self.queue))
        await self._check_capacity()
        self.last_poll = time.monotonic()

    async def _check_capacity(self) -> None:
        count = len(self.state.sessions)
        metrics.KNOWN_SESSIONS.set(count)
        if not self.capacity.exceeded_now(count):
            return
        message = self.capacity.message(count)
        log.warning("%s", message)
        if self.settings.pod is None:
            return  # not in a pod: the log and the metrics say it
        namespace, name = self.settings.pod
        pod = {"metadata": {"namespace": namespace, "name": name}}
        try:
            await asyncio.to_thread(
                self.kube.post_event, pod, "Warning", "OverCapacity", message, "Pod", "v1"
            )
        except Exception as exc:  # the log line said it already
            log.warning("could not post the OverCapacity event: %s", type(exc).__name__)

    async def react_forever(self) -> None:
        """Status within a second of a keyspace event, written beside the reactor."""
        async for keys in self.poller.reactions():
            for key in keys:
                self.status.spawn(key)
