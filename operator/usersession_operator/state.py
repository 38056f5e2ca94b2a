"""What the operator knows right now, fed by watches; read by status and the poller.

Every UserSession and every child the operator manages arrives through a watch
and is kept here, so computing a status never asks the API server. Only what
status reads is kept (see _trimmed): at thousands of sessions, whole objects
would be most of the operator's memory.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from usersession_operator.session.names import INSTANCE_LABEL, child_name

Key = tuple[str, str]  # (namespace, name)

# A child whose content nothing reads, only its existence: one shared object for all.
PRESENT: dict[str, Any] = {"metadata": {}}


@dataclass(frozen=True, slots=True)
class QueueReading:
    depth: int | None  # messages waiting (LLEN Q); None when the poll failed
    processing: int | None = None  # messages in flight (LLEN Q:processing)
    error: str | None = None

    @property
    def busy(self) -> bool:
        """Work waiting or in flight: what keeps a session awake."""
        return (self.depth or 0) + (self.processing or 0) > 0


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    generation: int | None  # generation the last reconcile acted on, successfully or not
    error: str | None = None
    permanent: bool = False  # an error only a new spec can fix (an invalid session)


@dataclass
class ClusterState:
    sessions: dict[Key, dict[str, Any]] = field(default_factory=dict)
    # Children by (namespace, instance label), which child_name() derives from the session name.
    deployments: dict[Key, dict[str, Any]] = field(default_factory=dict)
    scaled_objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    trigger_authentications: dict[Key, dict[str, Any]] = field(default_factory=dict)
    claims: dict[Key, dict[str, Any]] = field(default_factory=dict)
    pods: dict[Key, dict[str, dict[str, Any]]] = field(default_factory=dict)
    queues: dict[Key, QueueReading] = field(default_factory=dict)
    reconciled: dict[Key, ReconcileResult] = field(default_factory=dict)
    written_status: dict[Key, dict[str, Any]] = field(default_factory=dict)
    # When work was first seen on a sleeping session: its wake is timed from there.
    wake_started: dict[Key, dt.datetime] = field(default_factory=dict)
    # child key -> {child kind: digest of the wanted manifest the live child was
    # last seen to match}. Stands in for the live object when deciding whether a
    # reconcile must apply: same digest, nothing to write.
    matched: dict[Key, dict[str, str]] = field(default_factory=dict)
    # Sessions with spec.expireAfterIdleSeconds: the few expiry looks at after a poll.
    expiring: set[Key] = field(default_factory=set)
    _by_instance: dict[Key, Key] = field(default_factory=dict)

    # -- sessions --------------------------------------------------------------

    def upsert_session(self, body: Mapping[str, Any]) -> Key:
        key = _key(body)
        # Once the operator has written (or read back) a status, written_status is
        # its copy: a second one in the snapshot would only double the memory.
        self.sessions[key] = _session_snapshot(body, with_status=key not in self.written_status)
        if (body.get("spec") or {}).get("expireAfterIdleSeconds") is not None:
            self.expiring.add(key)
        else:
            self.expiring.discard(key)
        self._by_instance[(key[0], child_name(key[1]))] = key
        return key

    def last_status(self, key: Key) -> Mapping[str, Any]:
        """The status last written: by this replica, or (before it has written or read
        one back) whatever the object carries, written by a leader before it."""
        written = self.written_status.get(key)
        if written is not None:
            return written
        return (self.sessions.get(key) or {}).get("status") or {}

    def forget_session(self, key: Key) -> None:
        self.sessions.pop(key, None)
        self._by_instance.pop((key[0], child_name(key[1])), None)
        for table in (self.queues, self.reconciled, self.written_status, self.wake_started):
            table.pop(key, None)
        self.matched.pop(self.child_key(key), None)
        self.expiring.discard(key)

    def session_for_child(self, child: Mapping[str, Any]) -> Key | None:
        instance = (child.get("metadata", {}).get("labels") or {}).get(INSTANCE_LABEL)
        if not instance:
            return None
        return self._by_instance.get((child["metadata"]["namespace"], instance))

    def session_for_instance(self, namespace: str, instance: str) -> Key | None:
        """The session whose children are named `instance` (what KEDA calls its ScaledObject)."""
        return self._by_instance.get((namespace, instance))

    def child_key(self, key: Key) -> Key:
        return key[0], child_name(key[1])

    # -- children --------------------------------------------------------------

    def record_child(
        self, table: dict[Key, dict[str, Any]], body: Mapping[str, Any], deleted: bool
    ) -> None:
        instance = (body.get("metadata", {}).get("labels") or {}).get(INSTANCE_LABEL)
        if not instance:
            return
        key = (sys.intern(body["metadata"]["namespace"]), sys.intern(instance))
        if deleted:
            table.pop(key, None)
        elif table is self.trigger_authentications:
            table[key] = PRESENT  # status asks only whether it exists
        else:
            table[key] = _trimmed(body)

    def record_pod(self, body: Mapping[str, Any], deleted: bool) -> None:
        instance = (body.get("metadata", {}).get("labels") or {}).get(INSTANCE_LABEL)
        if not instance:
            return
        key = (body["metadata"]["namespace"], instance)
        pods = self.pods.setdefault(key, {})
        if deleted:
            pods.pop(body["metadata"]["name"], None)
            if not pods:
                self.pods.pop(key, None)
        else:
            pods[body["metadata"]["name"]] = _trimmed(body, whole_status=True)


def _key(body: Mapping[str, Any]) -> Key:
    return body["metadata"]["namespace"], body["metadata"]["name"]


def _compact(value: Any) -> Any:
    """A plain deep copy (kopf hands out live views that later events mutate), its
    strings interned: thousands of sessions repeat the same condition types,
    reasons, messages and label values, and one copy of each is enough."""
    if isinstance(value, Mapping):
        return {sys.intern(str(k)): _compact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_compact(v) for v in value]
    if isinstance(value, str):
        return sys.intern(value)
    return value


_KEPT_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "labels",
    "annotations",
    "finalizers",
)
# Annotations nobody here reads, and large: the last applied configuration is a
# copy of the whole object.
_DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def _metadata(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    kept = {k: _compact(meta[k]) for k in _KEPT_METADATA if k in meta}
    annotations = kept.get("annotations")
    if annotations:
        for dropped in _DROPPED_ANNOTATIONS:
            annotations.pop(dropped, None)
    return kept


def _session_snapshot(body: Mapping[str, Any], with_status: bool) -> dict[str, Any]:
    # Plain data that later events cannot mutate, strings interned.
    snapshot = {"metadata": _metadata(body)}
    for part in ("apiVersion", "kind", "spec", *(("status",) if with_status else ())):
        if part in body:
            snapshot[part] = _compact(body[part])
    return snapshot


# What status reads of a child (besides its name): the Deployment's ready count
# and conditions, the ScaledObject's conditions and KEDA's paused annotation,
# the claim's phase and capacity. Pods are kept with their whole status (only
# awake sessions have one).
_CHILD_METADATA = ("name", "namespace", "creationTimestamp", "deletionTimestamp")
_CHILD_STATUS = ("readyReplicas", "conditions", "phase", "capacity")
_KEDA_ANNOTATIONS = "autoscaling.keda.sh/"


def _trimmed(body: Mapping[str, Any], whole_status: bool = False) -> dict[str, Any]:
    """What status reads of a child or pod (never the pod template, which is most of
    a Deployment; never KEDA's bookkeeping in a ScaledObject's status). Drift is
    judged when the object arrives, against the full object, and kept in
    ClusterState.matched."""
    meta = body.get("metadata") or {}
    kept_meta = {k: _compact(meta[k]) for k in _CHILD_METADATA if k in meta}
    keda = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith(_KEDA_ANNOTATIONS)
    }
    if keda:
        kept_meta["annotations"] = keda
    trimmed: dict[str, Any] = {"metadata": kept_meta}
    replicas = (body.get("spec") or {}).get("replicas")
    if replicas is not None:
        trimmed["spec"] = {"replicas": replicas}
    status = body.get("status") or {}
    if not whole_status:
        status = {k: status[k] for k in _CHILD_STATUS if k in status}
        if "conditions" in status:
            status["conditions"] = [c for c in status["conditions"] or () if _read(c)]
    if status:
        trimmed["status"] = _compact(status)
    return trimmed


def _read(condition: Mapping[str, Any]) -> bool:
    """The conditions status reads of a child: KEDA's Ready on a ScaledObject, and a
    Deployment's failures (ReplicaFailure, a progress deadline exceeded). The rest
    (KEDA's Active, Fallback and Paused; a Deployment's Available and healthy
    Progressing, with per-object messages) is most of a child's status."""
    kind = condition.get("type")
    return (
        kind == "Ready"
        or (kind == "ReplicaFailure" and condition.get("status") == "True")
        or (kind == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded")
    )
