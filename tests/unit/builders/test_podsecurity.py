from __future__ import annotations

from collections.abc import Callable

from usersession_operator.builders.deployment import build_deployment
from usersession_operator.builders.podsecurity import RESTRICTED_CONTAINER, RESTRICTED_POD
from usersession_operator.session.model import Session

MakeSession = Callable[..., Session]


def _pod_spec(session: Session) -> dict:
    spec: dict = build_deployment(session)["spec"]["template"]["spec"]
    return spec


def test_defaults_meet_restricted(make_session: MakeSession) -> None:
    pod = _pod_spec(make_session())
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }


def test_a_session_key_replaces_only_that_key(make_session: MakeSession) -> None:
    pod = _pod_spec(
        make_session(
            workload={
                "image": "i",
                "podSecurityContext": {"runAsUser": 1000, "runAsNonRoot": False},
                "securityContext": {"readOnlyRootFilesystem": True},
            }
        )
    )
    assert pod["securityContext"] == {
        "runAsNonRoot": False,
        "runAsUser": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }


def test_manifests_never_share_the_defaults(make_session: MakeSession) -> None:
    # A child manifest is edited by callers (drift repair, tests); the module's
    # defaults must come out of it untouched.
    pod = _pod_spec(make_session())
    pod["securityContext"]["seccompProfile"]["type"] = "Unconfined"
    pod["containers"][0]["securityContext"]["capabilities"]["drop"].clear()
    assert RESTRICTED_POD["seccompProfile"] == {"type": "RuntimeDefault"}
    assert RESTRICTED_CONTAINER["capabilities"] == {"drop": ["ALL"]}
