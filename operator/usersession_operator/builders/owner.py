"""Metadata every child carries: its name, the operator's labels, and an owner reference."""

from __future__ import annotations

from typing import Any

from usersession_operator.session.model import API_VERSION, KIND, Session
from usersession_operator.session.names import child_name, labels


def owner_reference(session: Session) -> dict[str, Any]:
    # The API server refuses a reference without a uid; failing here says why.
    if not session.uid:
        raise ValueError(
            f"UserSession {session.namespace}/{session.name} has no uid; "
            "build children only from objects read from the API server"
        )
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": session.name,
        "uid": session.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_metadata(session: Session, component: str) -> dict[str, Any]:
    """Built from scratch: the UserSession's own labels and annotations (for
    example Argo CD's tracking label) must never reach its children."""
    return {
        "name": child_name(session.name),
        "namespace": session.namespace,
        "labels": labels(session.name, component),
        "ownerReferences": [owner_reference(session)],
    }
