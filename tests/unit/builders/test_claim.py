from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from usersession_operator.builders import build_children, build_claim, build_deployment
from usersession_operator.session.model import Session, Storage

MakeSession = Callable[..., Session]


def test_no_storage_no_claim(make_session: MakeSession) -> None:
    session = make_session()
    assert build_claim(session) is None
    assert "PersistentVolumeClaim" not in [c["kind"] for c in build_children(session)]
    pod = build_deployment(session)["spec"]["template"]["spec"]
    assert "volumes" not in pod


def test_the_claim_is_owned_and_mounted_with_the_default_policy(make_session: MakeSession) -> None:
    session = replace(make_session(), storage=Storage("5Gi", "/home/agent"))
    claim = build_claim(session)
    assert claim is not None
    assert claim["metadata"]["ownerReferences"][0]["uid"] == session.uid
    assert claim["metadata"]["labels"]["app.kubernetes.io/component"] == "storage"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "5Gi"}},
    }  # no storageClassName: the cluster's default class decides
    pod = build_deployment(session)["spec"]["template"]["spec"]
    [volume] = pod["volumes"]
    assert volume["persistentVolumeClaim"] == {"claimName": claim["metadata"]["name"]}
    [container] = pod["containers"]
    assert container["volumeMounts"] == [{"name": volume["name"], "mountPath": "/home/agent"}]
    # Applied before the Deployment whose pod names it.
    kinds = [c["kind"] for c in build_children(session)]
    assert kinds.index("PersistentVolumeClaim") < kinds.index("Deployment")


def test_a_retained_claim_carries_no_owner_so_it_outlives_the_session(
    make_session: MakeSession,
) -> None:
    storage = Storage("1Gi", storage_class_name="fast", deletion_policy="Retain")
    claim = build_claim(replace(make_session(), storage=storage))
    assert claim is not None
    assert "ownerReferences" not in claim["metadata"]
    # Still labelled as the session's, which is how a new session of the name finds it.
    assert claim["metadata"]["labels"]["app.kubernetes.io/instance"]
    assert claim["spec"]["storageClassName"] == "fast"
