from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from usersession_operator.builders import build_children
from usersession_operator.builders.owner import owner_reference
from usersession_operator.builders.triggerauth import build_trigger_authentication
from usersession_operator.session.model import Session

MakeSession = Callable[..., Session]


def test_maps_the_secret_to_the_redis_password_parameter(make_session: MakeSession) -> None:
    session = make_session(redis={"passwordSecretRef": {"name": "alice-redis", "key": "pw"}})
    manifest = build_trigger_authentication(session)
    assert (manifest["apiVersion"], manifest["kind"]) == (
        "keda.sh/v1alpha1",
        "TriggerAuthentication",
    )
    assert manifest["metadata"]["name"] == "alice"
    assert manifest["metadata"]["namespace"] == "team-a"
    assert manifest["metadata"]["labels"]["app.kubernetes.io/component"] == "trigger-auth"
    assert manifest["spec"] == {
        "secretTargetRef": [{"parameter": "password", "name": "alice-redis", "key": "pw"}]
    }


def test_defaults_to_the_operator_secret(make_session: MakeSession) -> None:
    (ref,) = build_trigger_authentication(make_session())["spec"]["secretTargetRef"]
    assert (ref["name"], ref["key"]) == ("platform-redis", "redis-password")


def test_children_in_apply_order_share_one_owner(make_session: MakeSession) -> None:
    session = make_session()
    children = build_children(session)
    assert [c["kind"] for c in children] == ["TriggerAuthentication", "Deployment", "ScaledObject"]
    assert all(c["metadata"]["ownerReferences"] == [owner_reference(session)] for c in children)
    assert {c["metadata"]["name"] for c in children} == {"alice"}


def test_owner_reference_needs_a_uid(make_session: MakeSession) -> None:
    session = replace(make_session(), uid="")
    with pytest.raises(ValueError, match="no uid"):
        build_trigger_authentication(session)
