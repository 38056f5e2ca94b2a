"""Child manifests of a UserSession: pure functions of a Session, ready for server-side apply."""

from __future__ import annotations

from typing import Any

from usersession_operator.builders.deployment import (
    build_deployment,
    initial_deployment,
    replicas_seed,
)
from usersession_operator.builders.owner import owner_reference
from usersession_operator.builders.scaledobject import build_scaled_object
from usersession_operator.builders.triggerauth import build_trigger_authentication
from usersession_operator.model import Session

__all__ = [
    "build_children",
    "build_deployment",
    "build_scaled_object",
    "build_trigger_authentication",
    "initial_deployment",
    "owner_reference",
    "replicas_seed",
]


def build_children(session: Session) -> list[dict[str, Any]]:
    """In apply order: the ScaledObject names the other two, so they come first
    and KEDA never sees a reference to something missing."""
    return [
        build_trigger_authentication(session),
        build_deployment(session),
        build_scaled_object(session),
    ]
