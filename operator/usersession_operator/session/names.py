"""Names and labels of a session's children.

All three children share one name derived from the session's. A UserSession may
be named with up to 253 characters, but the name ends up inside longer ones
(Deployment -> ReplicaSet "<name>-<hash>" -> Pod "<replicaset>-<suffix>") and in
the app.kubernetes.io/instance label, whose values stop at 63 characters.
"""

from __future__ import annotations

import hashlib

# Leaves room for the ReplicaSet's "-" and 10-character pod-template hash inside
# 63 characters, so Kubernetes never has to truncate the derived names.
MAX_CHILD_NAME = 52
_PREFIX = 43  # + "-" + 8 hex characters = MAX_CHILD_NAME
_DIGEST = 8

APP_NAME = "usersession"
MANAGER = "usersession-operator"

COMPONENT_WORKER = "session-worker"
COMPONENT_SCALER = "scaler"
COMPONENT_TRIGGER_AUTH = "trigger-auth"
COMPONENT_STORAGE = "storage"

NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
COMPONENT_LABEL = "app.kubernetes.io/component"

MANAGED_BY_SELECTOR = {MANAGED_BY_LABEL: MANAGER}


def child_name(session_name: str) -> str:
    if len(session_name) <= MAX_CHILD_NAME:
        return session_name
    digest = hashlib.sha256(session_name.encode()).hexdigest()[:_DIGEST]
    # The prefix keeps the name recognisable; the digest keeps it unique. A cut
    # can end on a separator, which names must not end with.
    prefix = session_name[:_PREFIX].rstrip("-.")
    return f"{prefix}-{digest}" if prefix else digest


def selector_labels(session_name: str) -> dict[str, str]:
    """The Deployment's selector: immutable once created, so only stable keys."""
    return {NAME_LABEL: APP_NAME, INSTANCE_LABEL: child_name(session_name)}


def labels(session_name: str, component: str) -> dict[str, str]:
    return {
        **selector_labels(session_name),
        MANAGED_BY_LABEL: MANAGER,
        COMPONENT_LABEL: component,
    }
