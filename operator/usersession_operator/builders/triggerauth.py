"""The KEDA TriggerAuthentication that gives KEDA the Redis password (and, when
configured, the ACL username, CA and client certificate) from their Secrets."""

from __future__ import annotations

from typing import Any

from usersession_operator.builders.owner import child_metadata
from usersession_operator.builders.redisauth import trigger_auth_refs
from usersession_operator.builders.scaledobject import KEDA_API_VERSION
from usersession_operator.session.model import Session
from usersession_operator.session.names import COMPONENT_TRIGGER_AUTH


def build_trigger_authentication(session: Session) -> dict[str, Any]:
    return {
        "apiVersion": KEDA_API_VERSION,
        "kind": "TriggerAuthentication",
        "metadata": child_metadata(session, COMPONENT_TRIGGER_AUTH),
        "spec": trigger_auth_refs(session),
    }
