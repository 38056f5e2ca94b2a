"""Child manifests of a UserSession: pure functions of a Session, ready for server-side apply."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
    "CHILD_KINDS",
    "DEPLOYMENT",
    "SCALED_OBJECT",
    "TRIGGER_AUTH",
    "ChildKind",
    "build_children",
    "build_deployment",
    "build_scaled_object",
    "build_trigger_authentication",
    "initial_deployment",
    "owner_reference",
    "replicas_seed",
]


@dataclass(frozen=True)
class ChildKind:
    """One kind of child: its manifest builder and where it lives in the API."""

    kind: str
    group: str
    version: str
    plural: str
    build: Callable[[Session], dict[str, Any]]


TRIGGER_AUTH = ChildKind(
    "TriggerAuthentication",
    "keda.sh",
    "v1alpha1",
    "triggerauthentications",
    build_trigger_authentication,
)
DEPLOYMENT = ChildKind("Deployment", "apps", "v1", "deployments", build_deployment)
SCALED_OBJECT = ChildKind(
    "ScaledObject", "keda.sh", "v1alpha1", "scaledobjects", build_scaled_object
)
# Apply order: the ScaledObject names the other two, so they come first and
# KEDA never sees a reference to something missing.
CHILD_KINDS = (TRIGGER_AUTH, DEPLOYMENT, SCALED_OBJECT)


def build_children(session: Session) -> list[dict[str, Any]]:
    """Every child's manifest, in apply order."""
    return [child.build(session) for child in CHILD_KINDS]
