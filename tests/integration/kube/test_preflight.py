from __future__ import annotations

from kubernetes import client

from usersession_operator.kube.preflight import missing_crd


def test_the_installed_crd_passes(api_client: client.ApiClient) -> None:
    assert missing_crd(api_client) is None


def test_a_group_the_cluster_does_not_serve_says_how_to_install(
    api_client: client.ApiClient,
) -> None:
    # A group that does not exist answers 404 on discovery: the case of a fresh cluster.
    said = missing_crd(api_client, group="absent.ai-infra.dev")
    assert said is not None
    assert "usersessions.absent.ai-infra.dev/v1alpha1" in said
    assert "kubectl apply --server-side -f crds/" in said


def test_a_served_group_without_the_kind_is_missing_too(api_client: client.ApiClient) -> None:
    # The group and version exist (ours), the plural does not: an older CRD, say.
    assert missing_crd(api_client, plural="usersessionsets") is not None
