"""What the session API shows of a UserSession, and how lists are paged."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from typing import Any

from usersession_operator.session.model import Phase
from usersession_operator.sessionapi.errors import bad_request


def owner(obj: Mapping[str, Any]) -> str:
    return str((obj.get("spec") or {}).get("userId") or "")


def deleting(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def phase(obj: Mapping[str, Any]) -> str:
    if deleting(obj):
        return Phase.TERMINATING
    # Before the operator's first status write the session is, to a caller, pending.
    return str((obj.get("status") or {}).get("phase") or Phase.PENDING)


def summary(obj: Mapping[str, Any]) -> dict[str, Any]:
    metadata, status = obj.get("metadata") or {}, obj.get("status") or {}
    return {
        "id": metadata.get("name"),
        "user_id": owner(obj),
        "phase": phase(obj),
        "queue_depth": status.get("queueDepth"),
        "processing_depth": status.get("processingDepth"),
        "created_at": metadata.get("creationTimestamp"),
    }


def view(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the operator mirrors into status, in the API's snake_case."""
    status = obj.get("status") or {}
    pod = status.get("pod")
    return {
        **summary(obj),
        "suspended": bool((obj.get("spec") or {}).get("suspend")),
        "queue_name": status.get("queueName"),
        "replicas": status.get("replicas"),
        "ready_replicas": status.get("readyReplicas"),
        "pod": (
            {"name": pod.get("name"), "phase": pod.get("phase"), "ready": pod.get("ready")}
            if isinstance(pod, Mapping)
            else None
        ),
        "conditions": [
            {
                "type": c.get("type"),
                "status": c.get("status"),
                "reason": c.get("reason"),
                "message": c.get("message"),
                "last_transition_time": c.get("lastTransitionTime"),
            }
            for c in status.get("conditions") or []
        ],
        "storage": (
            {"claim": storage.get("claimName"), "phase": storage.get("phase")}
            if isinstance(storage := status.get("storage"), Mapping)
            else None
        ),
        "last_activity_time": status.get("lastActivityTime"),
        "observed_generation": status.get("observedGeneration"),
        "generation": (obj.get("metadata") or {}).get("generation"),
    }


# -- pagination --------------------------------------------------------------------


def page(
    objects: Iterable[Mapping[str, Any]], limit: int, token: str | None
) -> tuple[list[Mapping[str, Any]], str | None]:
    """One page in (creationTimestamp, name) order; the token names the last item served.

    A cursor rather than an offset: sessions created or deleted between pages
    neither repeat nor skip the others.
    """
    ordered = sorted(objects, key=_sort_key)
    if token:
        after = _decode_token(token)
        ordered = [o for o in ordered if _sort_key(o) > after]
    items = ordered[:limit]
    more = len(ordered) > limit
    return items, _encode_token(_sort_key(items[-1])) if more else None


def _sort_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("creationTimestamp") or ""), str(metadata.get("name") or "")


def _encode_token(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def _decode_token(token: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        value = None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise bad_request("invalid_query", "continue is not a token from a previous page")
    return value[0], value[1]
