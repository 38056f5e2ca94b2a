"""A session's pods as status reads them: which one speaks for the session, whether
it is ready, and what holds it back, in the kubelet's or the scheduler's words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Container states that will not fix themselves without a change to the spec
# or the cluster: the session is Degraded, not merely Waking.
_STUCK_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


def current_pod(pods: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The pod that speaks for the session: pods being deleted never do; then ready
    before not, still-running before finished (a Failed pod, e.g. an evicted one, is
    left behind by its ReplicaSet), newest first."""
    live = [p for p in pods if not p.get("metadata", {}).get("deletionTimestamp")]
    if not live:
        return None
    return max(
        live,
        key=lambda p: (
            pod_ready(p),
            not pod_finished(p),
            p["metadata"].get("creationTimestamp") or "",
        ),
    )


def pod_finished(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def pod_ready(pod: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in pod.get("status", {}).get("conditions", []) or []
    )


def stuck_reason(pod: Mapping[str, Any] | None, desired: int) -> tuple[str, str] | None:
    if pod is None:
        return None
    status = pod.get("status", {})
    if status.get("phase") == "Failed":
        # At zero replicas a Failed pod is a leftover (ReplicaSets do not delete
        # evicted pods), not a session that needs attention.
        if desired < 1:
            return None
        return "PodFailed", status.get("message") or f"pod {pod['metadata']['name']} failed"
    containers = [
        *(status.get("initContainerStatuses", []) or []),
        *(status.get("containerStatuses", []) or []),
    ]
    for container in containers:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in _STUCK_REASONS:
            return waiting["reason"], waiting.get("message") or waiting["reason"]
    return None


def held_back(pod: Mapping[str, Any]) -> str:
    """What keeps a pod from Ready, in the kubelet's or the scheduler's words."""
    status = pod.get("status", {})
    for cond in status.get("conditions", []) or []:
        # The scheduler's reason: no node fits, an unbound claim, ...
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return f"{cond.get('reason') or 'Unschedulable'}: {cond.get('message') or ''}".strip()
    for container in [
        *(status.get("initContainerStatuses", []) or []),
        *(status.get("containerStatuses", []) or []),
    ]:
        state = container.get("state") or {}
        waiting = state.get("waiting") or {}
        if waiting:
            name, reason = container.get("name"), waiting.get("reason")
            return f"container {name} waiting ({reason}) {waiting.get('message') or ''}".strip()
        if "running" in state and not container.get("ready"):
            return f"container {container.get('name')} running but not ready (readiness probe)"
    return f"pod phase {status.get('phase') or 'Pending'}"
