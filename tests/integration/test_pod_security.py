"""Session pods against the API server's own Pod Security admission.

A namespace labelled enforce=restricted refuses non-conforming pods at create
time, so the pod template the operator builds is created there as a Pod
(server-side dry run: admission runs in full, nothing is stored).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from support.namespaces import fresh_namespace
from usersession_operator.builders.deployment import build_deployment
from usersession_operator.session.spec import session_from_body
from usersession_operator.settings import OperatorSettings


@pytest.fixture
def restricted(api_client: client.ApiClient) -> Iterator[str]:
    with fresh_namespace(api_client, "restricted") as name:
        label = {"pod-security.kubernetes.io/enforce": "restricted"}
        client.CoreV1Api(api_client).patch_namespace(name, {"metadata": {"labels": label}})
        yield name


def _create_pod(
    api_client: client.ApiClient,
    namespace: str,
    workload: dict[str, Any],
    settings: OperatorSettings | None = None,
) -> dict[str, Any]:
    body = {
        "apiVersion": "sessions.ai-infra.dev/v1alpha1",
        "kind": "UserSession",
        "metadata": {"name": "alice", "namespace": namespace, "uid": "uid-1"},
        "spec": {"userId": "alice@example.com", "workload": workload},
    }
    session = session_from_body(body, settings or OperatorSettings())
    template = build_deployment(session)["spec"]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod", **template}
    pod["metadata"] = {**template["metadata"], "generateName": "alice-"}
    client.CoreV1Api(api_client).create_namespaced_pod(namespace, pod, dry_run="All")
    return dict(template["spec"])


def test_a_restricted_namespace_admits_the_default_pod(
    api_client: client.ApiClient, restricted: str
) -> None:
    _create_pod(api_client, restricted, {"image": "registry.example.com/w:1"})


def test_the_full_examples_pod_fields_stay_admitted(
    api_client: client.ApiClient, restricted: str
) -> None:
    _create_pod(
        api_client,
        restricted,
        {
            "image": "registry.example.com/w:1",
            "securityContext": {"readOnlyRootFilesystem": True},
            "podSecurityContext": {"runAsUser": 65532, "fsGroup": 65532},
            "imagePullSecrets": [{"name": "registry"}],
        },
    )


def test_a_session_that_asks_for_root_is_refused_there(
    api_client: client.ApiClient, restricted: str
) -> None:
    # The defaults are what admit the pod: laying runAsNonRoot: false over them
    # is refused, which shows the admission above was a real check.
    with pytest.raises(ApiException) as refused:
        _create_pod(
            api_client,
            restricted,
            {"image": "registry.example.com/w:1", "podSecurityContext": {"runAsNonRoot": False}},
        )
    assert refused.value.status == 403
    assert "violates PodSecurity" in refused.value.body


def test_a_platforms_workload_defaults_and_a_sessions_own_keys_stay_admitted(
    api_client: client.ApiClient, restricted: str
) -> None:
    # The chart's sessionWorkloadDefaults (as in its full values) under a session
    # that sets one key of its own: three layers, and still restricted.
    platform = OperatorSettings(
        workload_defaults={
            "podSecurityContext": {"runAsUser": 1000, "fsGroup": 1000},
            "securityContext": {"readOnlyRootFilesystem": True},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "pool", "operator": "Exists", "effect": "NoSchedule"}],
        }
    )
    own = {"image": "registry.example.com/w:1", "podSecurityContext": {"runAsUser": 2000}}
    pod = _create_pod(api_client, restricted, own, platform)
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
        "runAsUser": 2000,
        "fsGroup": 1000,
    }
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
