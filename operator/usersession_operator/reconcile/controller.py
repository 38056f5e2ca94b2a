"""The operator's behaviour, called by the thin kopf handlers in handlers.py.

Reconcile applies a session's children; child events restore drift and refresh
status, writing only what changed; the finalizer cleans Redis up. Queue depths
come from polling.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import kopf
from kubernetes.client import ApiException

from usersession_operator import metrics
from usersession_operator.builders import (
    CHILD_KINDS,
    CLAIM,
    DEPLOYMENT,
    SCALED_OBJECT,
    TRIGGER_AUTH,
    ChildKind,
    initial_deployment,
    replicas_seed,
)
from usersession_operator.builders.scaledobject import PAUSED_REPLICAS_ANNOTATION
from usersession_operator.kube import watching
from usersession_operator.kube.client import Kube, describe_api_error
from usersession_operator.queues.connections import QueueTarget, RedisQueues
from usersession_operator.runtime.background import Background
from usersession_operator.session.model import (
    DEFAULT_START_TIMEOUT_SECONDS,
    FINALIZER,
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    InvalidSession,
    Session,
    default_queue_name,
    processing_key,
)
from usersession_operator.session.names import MANAGED_BY_SELECTOR, child_name
from usersession_operator.session.spec import session_from_body
from usersession_operator.settings import OperatorSettings
from usersession_operator.state import ClusterState, Key, ReconcileResult
from usersession_operator.status.compute import (
    Observation,
    Phase,
    compute_status,
    status_patch,
    wake_start,
)
from usersession_operator.status.conditions import new_warning
from usersession_operator.status.drift import drifted
from usersession_operator.status.expiry import expired
from usersession_operator.wake.poller import Poller

log = logging.getLogger(__name__)

SESSION = watching.Resource(KIND, GROUP, VERSION, PLURAL)
# A session kopf has not handed to reconcile this long after it appeared gets
# reconciled by the poll (Controller.resync).
RESYNC_AFTER_SECONDS = 60.0


class Controller:
    def __init__(
        self,
        settings: OperatorSettings,
        kube: Kube,
        state: ClusterState | None = None,
        forget: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.kube = kube
        self.state = state or ClusterState()
        self.queues = RedisQueues(self._read_secret, self._read_config_map)
        self.poller = Poller(
            settings,
            self.state,
            self.queues,
            self._live_session,
            self._refresh_settled,
            self._after_poll,
        )
        # Set once the children's watches have listed everything: from then on a
        # child missing from the state is missing from the cluster.
        self.children_synced = False
        self._forget = forget  # drops what kopf remembers of a deleted object
        self._locks: dict[Key, asyncio.Lock] = {}
        self._parsed: dict[Key, tuple[str, Session | InvalidSession]] = {}
        self._refreshing: set[Key] = set()  # refreshes scheduled and not started yet
        self._resyncing: set[Key] = set()
        self._background = Background("background work")  # restores, refreshes, resyncs
        self._watches: list[watching.Watch] = []
        self._tables = {
            DEPLOYMENT: self.state.deployments,
            SCALED_OBJECT: self.state.scaled_objects,
            TRIGGER_AUTH: self.state.trigger_authentications,
            CLAIM: self.state.claims,
        }

    # -- start ---------------------------------------------------------------

    async def start(self) -> None:
        """Learn every session, then every child and pod, before kopf hands over the
        first session: so that a restart finds its children as wanted and its
        statuses current, and writes nothing."""
        api_client = self.kube.api_client
        namespaces = self.settings.namespaces
        async for body in watching.list_all(api_client, SESSION, namespaces):
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

    # -- reconcile -----------------------------------------------------------

    async def reconcile(self, body: Mapping[str, Any]) -> None:
        """Make the children match the spec, writing only those that differ.

        Level-based: after a restart every session is reconciled again, and one
        whose children are as wanted costs no write at all.
        """
        key = self.state.upsert_session(body)
        session = self._session(key)
        if isinstance(session, InvalidSession):
            self._reconciled(key, ReconcileResult(_generation(body), str(session)))
            await self.refresh_status(key)
            metrics.RECONCILES.labels("invalid").inc()
            raise kopf.PermanentError(str(session))
        started = time.monotonic()
        try:
            await self._apply_children(session)
        except ApiException as exc:
            message = describe_api_error(exc)
            self._reconciled(key, ReconcileResult(_generation(body), message))
            await self.refresh_status(key)
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
        await self.refresh_status(key)

    def _reconciled(self, key: Key, result: ReconcileResult) -> None:
        self.state.reconciled[key] = result
        self.state.unreconciled.pop(key, None)

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
            if body is None or key in self._resyncing or now - seen < RESYNC_AFTER_SECONDS:
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

    async def _after_poll(self) -> None:
        await self.expire_idle()
        self.resync()

    async def _apply_children(self, session: Session) -> None:
        for kind in CHILD_KINDS:  # in apply order
            manifest = kind.build(session)
            if manifest is None:  # the session has none of these (a claim without storage)
                continue
            child = self.state.child_key(session.key)
            if self.state.matched.get(child, {}).get(kind.kind) != _digest(manifest):
                await self._apply_child(kind, session, manifest)

    async def _apply_child(
        self, kind: ChildKind, session: Session, manifest: dict[str, Any] | None = None
    ) -> None:
        """Apply one child in a worker thread; the state is only touched here, on the loop."""
        manifest = manifest or kind.build(session)
        if manifest is None:
            return
        table = self._tables[kind]
        child = self.state.child_key(session.key)
        exists: bool | None = True if child in table else None
        if exists is None and self.children_synced:
            exists = False
        live = await asyncio.to_thread(self._apply_blocking, kind, manifest, session, exists)
        # Status can use the result at once instead of waiting for the watch event.
        self.state.record_child(table, live, deleted=False)
        self._judge(kind, child, manifest, live)

    def _apply_blocking(
        self, kind: ChildKind, manifest: dict[str, Any], session: Session, exists: bool | None
    ) -> dict[str, Any]:
        if kind != DEPLOYMENT:
            return self.kube.apply(manifest)
        if exists is None:  # the watch has not listed yet: ask
            name = child_name(session.name)
            exists = self.kube.get(DEPLOYMENT.kind, session.namespace, name) is not None
        return self.kube.apply_deployment(
            manifest, initial_deployment(session), replicas_seed(session), exists=exists
        )

    def _judge(
        self, kind: ChildKind, child: Key, wanted: Mapping[str, Any], live: Mapping[str, Any]
    ) -> bool:
        """Remember whether a live child matches the wanted one; True if it drifted."""
        verdicts = self.state.matched.setdefault(child, {})
        if drifted(wanted, live):
            verdicts.pop(kind.kind, None)
            return True
        verdicts[kind.kind] = _digest(wanted)
        return False

    # -- children's events (from watching.py, on the loop) ---------------------

    def child_seen(self, kind: ChildKind, event_type: str, body: Mapping[str, Any]) -> None:
        """Record a child; restore it if it drifted or went; refresh its session's status."""
        deleted = event_type == "DELETED"
        self.state.record_child(self._tables[kind], body, deleted)
        key = self.state.session_for_child(body)
        if key is None:
            return
        session = self._live_session(key)
        wanted = kind.build(session) if session is not None else None
        if session is not None and wanted is not None:
            child = self.state.child_key(key)
            if deleted:
                self.state.matched.get(child, {}).pop(kind.kind, None)
            if deleted or self._judge(kind, child, wanted, body):
                self._background.spawn(self._restore(kind, session, body))
        self.schedule_refresh(key)

    async def _restore(self, kind: ChildKind, session: Session, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        log.info(
            "restoring %s %s/%s of UserSession %s",
            kind.kind,
            meta.get("namespace"),
            meta.get("name"),
            session.name,
        )
        metrics.DRIFT_RESTORES.labels(kind.kind).inc()
        try:
            await self._apply_child(kind, session)
        except ApiException as exc:
            log.warning(
                "could not restore %s for %s/%s: %s",
                kind.kind,
                *session.key,
                describe_api_error(exc),
            )
        await self._refresh_settled(session.key)

    def pod_seen(self, event_type: str, body: Mapping[str, Any]) -> None:
        self.state.record_pod(body, deleted=event_type == "DELETED")
        key = self.state.session_for_child(body)
        if key is not None:
            self.schedule_refresh(key)

    def _session(self, key: Key) -> Session | InvalidSession:
        """The session parsed from its body, once per resourceVersion (status and
        the poller ask for it every cycle)."""
        body = self.state.sessions[key]
        version = str(body.get("metadata", {}).get("resourceVersion") or "")
        cached = self._parsed.get(key)
        if cached is not None and cached[0] == version and version:
            return cached[1]
        parsed: Session | InvalidSession
        try:
            parsed = session_from_body(body, self.settings)
        except InvalidSession as exc:
            parsed = exc
        self._parsed[key] = (version, parsed)
        return parsed

    def _live_session(self, key: Key) -> Session | None:
        """The session, unless it is going away or invalid (then children are left alone)."""
        body = self.state.sessions.get(key)
        if body is None or body.get("metadata", {}).get("deletionTimestamp"):
            return None
        session = self._session(key)
        return None if isinstance(session, InvalidSession) else session

    def session_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        if event_type == "DELETED":
            key = (body["metadata"]["namespace"], body["metadata"]["name"])
            self.state.forget_session(key)
            self._locks.pop(key, None)
            self._parsed.pop(key, None)
            self.poller.forget(key)
            if self._forget is not None:
                self._forget(str(body["metadata"].get("uid") or ""))
        else:
            self.state.upsert_session(body)

    async def settle(self) -> None:
        """Wait until the background work events started (restores, refreshes) is done."""
        await self._background.settle()

    # -- status ----------------------------------------------------------------

    def schedule_refresh(self, key: Key) -> None:
        """Refresh a session's status soon; events that arrive together make one refresh."""
        if key not in self._refreshing:
            self._refreshing.add(key)
            self._background.spawn(self._scheduled_refresh(key))

    async def _scheduled_refresh(self, key: Key) -> None:
        await asyncio.sleep(0)  # let the events already queued land first
        self._refreshing.discard(key)  # a later event schedules another
        await self._refresh_settled(key)

    async def _refresh_settled(self, key: Key) -> None:
        """Refresh, unless the session has not been reconciled yet: its reconcile
        writes the first status, once, instead of a status per child applied."""
        if key in self.state.reconciled:
            await self.refresh_status(key)

    async def refresh_status(self, key: Key) -> None:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            body = self.state.sessions.get(key)
            if body is None:
                return
            previous = self.state.written_status.get(key, body.get("status") or {})
            obs = self._observe(key, body)
            started = wake_start(obs, previous.get("phase"))
            if started is not None and obs.wake_started is None:
                self.state.wake_started[key] = started
                obs = dataclasses.replace(obs, wake_started=started)
            desired = compute_status(obs, previous)
            reading = self.state.queues.get(key)
            idle = reading is None or not reading.busy
            if desired["phase"] == Phase.SUSPENDED or (desired["phase"] == Phase.SLEEPING and idle):
                # Not a wake any more. A Degraded one is: its clock keeps running, so
                # the start timeout and the wake's duration count what the user waits.
                self.state.wake_started.pop(key, None)
            patch = status_patch(previous, desired)
            if patch is None:
                # Known to be current: the poll need not look again until something changes.
                self.state.written_status.setdefault(key, dict(previous))
                return
            warning = new_warning(previous, desired)
            if warning is not None:
                # Before the write, so whoever sees the new status also finds the
                # event; a refused write repeats it, which beats losing it.
                await self._warn(key, body, *warning)
            try:
                await asyncio.to_thread(self.kube.patch_status, key[0], key[1], patch)
            except ApiException as exc:
                if exc.status != 404:  # gone already: nothing to report on
                    log.warning("status update of %s/%s failed: %s", *key, describe_api_error(exc))
                return
            metrics.STATUS_PATCHES.inc()
            self.state.written_status[key] = desired
            woken = (
                self.state.wake_started.pop(key, None)
                if desired["phase"] == Phase.RUNNING
                else None
            )
            if woken is not None and "lastWakeSeconds" in desired:
                metrics.WAKE_SECONDS.observe(desired["lastWakeSeconds"])

    async def _warn(self, key: Key, body: Mapping[str, Any], reason: str, message: str) -> None:
        log.warning("UserSession %s/%s: %s: %s", *key, reason, message)
        try:
            await asyncio.to_thread(self.kube.post_event, body, "Warning", reason, message)
        except Exception as exc:  # an event is a courtesy: it must not fail a status update
            detail = (
                describe_api_error(exc) if isinstance(exc, ApiException) else type(exc).__name__
            )
            log.warning("could not post a %s event for %s/%s: %s", reason, *key, detail)

    def _observe(self, key: Key, body: Mapping[str, Any]) -> Observation:
        session = self._session(key)
        if isinstance(session, Session):
            queue, start_timeout = session.queue_name, session.start_timeout_seconds
            claim_wanted = session.storage is not None
        else:  # status still reports on an invalid session
            queue, start_timeout = default_queue_name(*key), DEFAULT_START_TIMEOUT_SECONDS
            claim_wanted = False
        child_key = self.state.child_key(key)
        reading = self.state.queues.get(key)
        reconciled = self.state.reconciled.get(key)
        name = child_key[1]
        scaled_object = self.state.scaled_objects.get(child_key)
        return Observation(
            generation=int(body.get("metadata", {}).get("generation") or 0),
            reconciled_generation=reconciled.generation if reconciled else None,
            deleting=bool(body.get("metadata", {}).get("deletionTimestamp")),
            # What KEDA is told, not what the spec asks: the spec may be ahead.
            suspend=PAUSED_REPLICAS_ANNOTATION in _annotations(scaled_object),
            queue_name=queue,
            children={
                "deployment": name,
                "scaledObject": name,
                "triggerAuthentication": name,
                **({"persistentVolumeClaim": name} if claim_wanted else {}),
            },
            deployment=self.state.deployments.get(child_key),
            scaled_object=scaled_object,
            trigger_authentication=self.state.trigger_authentications.get(child_key),
            pods=list(self.state.pods.get(child_key, {}).values()),
            start_timeout_seconds=start_timeout,
            claim_wanted=claim_wanted,
            claim=self.state.claims.get(child_key),
            queue_depth=reading.depth if reading else None,
            processing_depth=reading.processing if reading else None,
            wake_started=self.state.wake_started.get(key),
            redis_error=reading.error if reading else None,
            reconcile_error=reconciled.error if reconciled else None,
            now=dt.datetime.now(dt.UTC),
        )

    # -- expiry --------------------------------------------------------------------

    async def expire_idle(self) -> None:
        """Delete the sessions idle past their spec.expireAfterIdleSeconds (after a poll)."""
        now = dt.datetime.now(dt.UTC)
        for key in list(self.state.expiring):
            body = self.state.sessions[key]
            limit = (body.get("spec") or {}).get("expireAfterIdleSeconds")
            if not isinstance(limit, int) or isinstance(limit, bool):
                continue  # off, or refused by the schema already
            status = self.state.written_status.get(key) or body.get("status") or {}
            if expired(limit, body, status, self.state.queues.get(key), now):
                await self._expire(key, body, limit)

    async def _expire(self, key: Key, body: Mapping[str, Any], limit: int) -> None:
        message = f"no activity for {limit}s (spec.expireAfterIdleSeconds): deleting the session"
        log.info("UserSession %s/%s: %s", *key, message)
        try:
            await asyncio.to_thread(self.kube.post_event, body, "Normal", "Expired", message)
            uid = str(body.get("metadata", {}).get("uid") or "")
            await asyncio.to_thread(self.kube.delete_session, *key, uid)
        except ApiException as exc:
            if exc.status not in (404, 409):  # gone, or replaced by a new one: nothing to do
                log.warning("could not expire %s/%s: %s", *key, describe_api_error(exc))
            return
        metrics.EXPIRED.inc()

    # -- deletion ------------------------------------------------------------------

    async def finalize(self, body: kopf.Body, runtime: dt.timedelta, retry: int) -> None:
        """Finalizer: remove the session's Redis keys. Children go by garbage collection.

        Redis down: retry with backoff and a Warning event; after
        cleanup_timeout_seconds give up, name the keys left behind in a Warning
        event, and let the deletion finish, so it can never hang for good.
        """
        key = self.state.upsert_session(body)
        await self.refresh_status(key)
        session = self._session(key)
        if isinstance(session, InvalidSession):
            message = f"the session is invalid, so its keys are unknown: {session}"
            await self._warn(key, body, "RedisCleanupSkipped", message)
            return
        target = QueueTarget.of(session, self.settings)
        try:
            removed = await self.queues.delete_session_keys(target)
        except Exception as exc:  # any failure is retried the same way
            reason = (
                f"{type(exc).__name__}: {exc}"
                if not isinstance(exc, ApiException)
                else describe_api_error(exc)
            )
            left = f"{target.queue}, {processing_key(target.queue)}, {target.queue}:reply:*"
            limit = self.settings.cleanup_timeout_seconds
            if runtime.total_seconds() >= limit:
                metrics.CLEANUPS.labels("abandoned").inc()
                message = f"gave up after {limit:.0f}s ({reason}); keys left in Redis: {left}"
                await self._warn(key, body, "RedisCleanupAbandoned", message)
                return
            metrics.CLEANUPS.labels("retry").inc()
            delay = min(30, 2 ** min(retry, 5))
            message = f"{reason}; retrying in {delay}s (giving up after {limit:.0f}s)"
            await self._warn(key, body, "RedisCleanupFailed", message)
            raise kopf.TemporaryError(reason, delay=delay) from exc
        metrics.CLEANUPS.labels("ok").inc()
        log.info("deleted Redis keys of %s/%s: %s", *key, removed)

    # -- plumbing -------------------------------------------------------------------

    async def _read_secret(self, namespace: str, name: str, key: str) -> str:
        return await self._read("Secret", self.kube.read_secret_value, namespace, name, key)

    async def _read_config_map(self, namespace: str, name: str, key: str) -> str:
        return await self._read("ConfigMap", self.kube.read_config_map_value, namespace, name, key)

    async def _read(
        self, kind: str, read: Callable[[str, str, str], str], namespace: str, name: str, key: str
    ) -> str:
        """One value of a Secret or ConfigMap, off the loop; a failure says which object."""
        try:
            return await asyncio.to_thread(read, namespace, name, key)
        except ApiException as exc:
            raise LookupError(
                f"cannot read {kind} {namespace}/{name}: {describe_api_error(exc)}"
            ) from None

    async def close(self) -> None:
        for watch in self._watches:
            watch.stop()
        await self._background.close()
        await self.poller.close()
        await self.queues.close()


def _digest(manifest: Mapping[str, Any]) -> str:
    """Identifies a wanted manifest: equal digests, equal manifests."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:32]


def _annotations(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}


def _generation(body: Mapping[str, Any]) -> int:
    """The generation a reconcile acted on, whether it worked or not: status reports on it."""
    return int(body.get("metadata", {}).get("generation") or 0)
