"""The PersistentVolumeClaim that keeps a session's files while it sleeps.

With deletionPolicy Delete the claim carries an owner reference, so garbage
collection removes it with the session. With Retain it carries none: it
outlives the session, still labelled with the session's name, and a new
session of that name applies the same claim and so takes it over.
"""

from __future__ import annotations

from typing import Any

from usersession_operator.builders.owner import child_metadata
from usersession_operator.session.model import Session
from usersession_operator.session.names import COMPONENT_STORAGE


def build_claim(session: Session) -> dict[str, Any] | None:
    storage = session.storage
    if storage is None:
        return None
    metadata = child_metadata(session, COMPONENT_STORAGE)
    if storage.retained:
        # Absent, not empty: server-side apply then drops the reference this
        # manager set when the policy was Delete.
        del metadata["ownerReferences"]
    spec: dict[str, Any] = {
        "accessModes": list(storage.access_modes),
        "resources": {"requests": {"storage": storage.size}},
    }
    if storage.storage_class_name is not None:
        spec["storageClassName"] = storage.storage_class_name
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": spec}
