"""A session's children, applied where they differ from what is wanted.

Whether a live child matches is judged when it is seen (its watch event, or the
answer to an apply) and kept as a digest of the wanted manifest, so a reconcile
of an unchanged session compares digests and writes nothing.

A live child "contains" the wanted manifest (drift.py) even when the wanted one
has lost a field the live one still has: resuming a session drops KEDA's paused
annotation, say. So every apply stamps the child with the digest of the manifest
it came from, and a child matches only a manifest of that digest. Found by the
chaos run: a ScaledObject's watch event, judged against a just-resumed spec
before its reconcile ran, matched it, the reconcile then skipped the apply, and
the session stayed paused for good with messages waiting.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

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
from usersession_operator.kube.client import ApiException, describe, unreachable
from usersession_operator.kube.writes import Kube
from usersession_operator.session.model import Session
from usersession_operator.session.names import child_name
from usersession_operator.state import ClusterState, Key
from usersession_operator.status.drift import drifted

log = logging.getLogger(__name__)

APPLIED_DIGEST_ANNOTATION = "sessions.ai-infra.dev/applied-digest"


class Children:
    def __init__(self, state: ClusterState, kube: Kube, synced: Callable[[], bool]) -> None:
        """synced: whether the children's watches have listed everything, so that a
        child missing from the state is missing from the cluster."""
        self.state = state
        self.kube = kube
        self.synced = synced
        self.tables = {
            DEPLOYMENT: state.deployments,
            SCALED_OBJECT: state.scaled_objects,
            TRIGGER_AUTH: state.trigger_authentications,
            CLAIM: state.claims,
        }

    async def apply_all(self, session: Session) -> None:
        """Apply, in order, each child whose live version is not known to match."""
        for kind in CHILD_KINDS:
            manifest = kind.build(session)
            if manifest is None:  # the session has none of these (a claim without storage)
                continue
            child = self.state.child_key(session.key)
            if self.state.matched.get(child, {}).get(kind.kind) != digest(manifest):
                await self.apply(kind, session, manifest)

    async def apply(
        self, kind: ChildKind, session: Session, manifest: dict[str, Any] | None = None
    ) -> None:
        """Apply one child in a worker thread; the state is only touched here, on the loop."""
        manifest = manifest or kind.build(session)
        if manifest is None:
            return
        table = self.tables[kind]
        child = self.state.child_key(session.key)
        exists: bool | None = True if child in table else None
        if exists is None and self.synced():
            exists = False
        stamped = _stamped(manifest)
        live = await asyncio.to_thread(self._apply_blocking, kind, stamped, session, exists)
        # Status can use the result at once instead of waiting for the watch event.
        self.state.record_child(table, live, deleted=False)
        self.judge(kind, child, manifest, live)

    def _apply_blocking(
        self, kind: ChildKind, manifest: dict[str, Any], session: Session, exists: bool | None
    ) -> dict[str, Any]:
        if kind != DEPLOYMENT:
            return self.kube.apply(manifest)
        if exists is None:  # the watch has not listed yet: ask
            name = child_name(session.name)
            exists = self.kube.get(DEPLOYMENT.kind, session.namespace, name) is not None
        # A new Deployment is made by the create body alone: it carries the stamp too,
        # or every takeover would apply every Deployment again.
        initial = initial_deployment(session)
        initial["metadata"]["annotations"] = {
            **(initial["metadata"].get("annotations") or {}),
            APPLIED_DIGEST_ANNOTATION: _applied_digest(manifest),
        }
        return self.kube.apply_deployment(manifest, initial, replicas_seed(session), exists=exists)

    def judge(
        self, kind: ChildKind, child: Key, wanted: Mapping[str, Any], live: Mapping[str, Any]
    ) -> bool:
        """Remember whether a live child matches the wanted one; True if it drifted."""
        verdicts = self.state.matched.setdefault(child, {})
        if drifted(wanted, live):
            verdicts.pop(kind.kind, None)
            return True
        if _applied_digest(live) == digest(wanted):
            verdicts[kind.kind] = digest(wanted)
        else:
            # Applied from another spec (or by a version before the stamp): not drift
            # to restore, but the next reconcile must apply, not skip.
            verdicts.pop(kind.kind, None)
        return False

    def seen(
        self, kind: ChildKind, session: Session, event_type: str, body: Mapping[str, Any]
    ) -> bool:
        """A watch event of a live session's child: True if it must be restored."""
        wanted = kind.build(session)
        if wanted is None:
            return False
        child = self.state.child_key(session.key)
        if event_type == "DELETED":
            self.state.matched.get(child, {}).pop(kind.kind, None)
            return True
        return self.judge(kind, child, wanted, body)

    async def restore(self, kind: ChildKind, session: Session, body: Mapping[str, Any]) -> None:
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
            await self.apply(kind, session)
        except Exception as exc:  # refused, or the API server away: the next event tries again
            if not (isinstance(exc, ApiException) or unreachable(exc)):
                raise
            log.warning(
                "could not restore %s for %s/%s: %s", kind.kind, *session.key, describe(exc)
            )


def digest(manifest: Mapping[str, Any]) -> str:
    """Identifies a wanted manifest: equal digests, equal manifests."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:32]


def _stamped(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest with the digest of itself (unstamped) in an annotation."""
    meta = dict(manifest.get("metadata") or {})
    meta["annotations"] = {
        **(meta.get("annotations") or {}),
        APPLIED_DIGEST_ANNOTATION: digest(manifest),
    }
    return {**manifest, "metadata": meta}


def _applied_digest(live: Mapping[str, Any]) -> str | None:
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(APPLIED_DIGEST_ANNOTATION)
    return value if isinstance(value, str) else None
