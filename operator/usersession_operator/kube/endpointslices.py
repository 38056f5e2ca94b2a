"""The push Service's EndpointSlice, written by the leader (blocking calls; see
leadership/endpoints.py for why and when)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client

from usersession_operator.kube.client import (
    CALL_TIMEOUT,
    ApiClient,
    ApiException,
    as_json,
    drain,
    read_or_none,
)

_APPLY = "application/apply-patch+yaml"


def service_uid(api_client: ApiClient, namespace: str, name: str) -> str:
    response: Any = client.CoreV1Api(api_client).read_namespaced_service(
        name, namespace, _preload_content=False, _request_timeout=CALL_TIMEOUT
    )
    return str(as_json(response)["metadata"]["uid"])


def apply(api_client: ApiClient, manifest: Mapping[str, Any], manager: str) -> None:
    meta = manifest["metadata"]
    response: Any = client.DiscoveryV1Api(api_client).patch_namespaced_endpoint_slice(
        meta["name"],
        meta["namespace"],
        dict(manifest),
        field_manager=manager,
        force=True,
        _content_type=_APPLY,
        _preload_content=False,
        _request_timeout=CALL_TIMEOUT,
    )
    drain(response)


def delete_if_only(api_client: ApiClient, namespace: str, name: str, address: str) -> bool:
    """Delete the slice if it holds `address` alone; True if deleted.

    The delete is conditional on the version read, so a slice someone else (a
    new leader) has written meanwhile stays.
    """
    discovery = client.DiscoveryV1Api(api_client)
    current = read_or_none(
        discovery.read_namespaced_endpoint_slice, name, namespace, _request_timeout=CALL_TIMEOUT
    )
    if current is None:
        return False
    addresses = [a for e in current.get("endpoints") or () for a in e.get("addresses") or ()]
    if addresses != [address]:
        return False
    body = client.V1DeleteOptions(
        preconditions=client.V1Preconditions(
            resource_version=current["metadata"]["resourceVersion"]
        )
    )
    try:
        discovery.delete_namespaced_endpoint_slice(
            name, namespace, body=body, _request_timeout=CALL_TIMEOUT
        )
    except ApiException as exc:
        if exc.status in (404, 409):  # gone, or rewritten meanwhile: not ours to delete
            return False
        raise
    return True
