"""Child manifests of a UserSession: pure functions of a Session, ready for server-side apply."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from usersession_operator.builders.claim import build_claim
from usersession_operator.builders.deployment import (
    build_deployment,
    initial_deployment,
    replicas_seed,
)
from usersession_operator.builders.owner import owner_reference
from usersession_operator.builders.scaledobject import build_scaled_object
from usersession_operator.builders.triggerauth import build_trigger_authentication
from usersession_operator.session.model import Session

__all__ = [
    "CHILD_KINDS",
    "CLAIM",
    "DEPLOYMENT",
    "SCALED_OBJECT",
    "TRIGGER_AUTH",
    "ChildKind",
    "build_children",
    "build_claim",
    "build_deployment",
    "build_scaled_object",
    "build_trigger_authentication",
    "initial_deployment",
    "owner_reference",
    "replicas_seed",
]


@dataclass(frozen=True)
class ChildKind:
    """One kind of child: its manifest builder and where it lives in the API.

    A builder returning None means the session has no child of this kind (a
    claim without spec.storage): nothing is applied, and none is restored.
    """

    kind: str
    group: str
    version: str
    plural: str
    build: Callable[[Session], dict[str, Any] | None]


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
CLAIM = ChildKind("PersistentVolumeClaim", "", "v1", "persistentvolumeclaims", build_claim)
# Apply order: the ScaledObject names the TriggerAuthentication and the
# Deployment, and the Deployment's pod the claim, so each comes before what
# names it: nothing ever references something missing.
CHILD_KINDS = (TRIGGER_AUTH, CLAIM, DEPLOYMENT, SCALED_OBJECT)


def build_children(session: Session) -> list[dict[str, Any]]:
    """The manifest of every child the session has, in apply order."""
    built = (child.build(session) for child in CHILD_KINDS)
    return [manifest for manifest in built if manifest is not None]
