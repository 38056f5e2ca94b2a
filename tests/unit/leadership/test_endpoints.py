"""The push Service's endpoint the leader writes: its settings and the EndpointSlice."""

from __future__ import annotations

import pytest

from usersession_operator.leadership.endpoints import PORT_NAME, endpoint_slice
from usersession_operator.settings import OperatorSettings, PushEndpoints

TARGET = PushEndpoints(
    service="uso-usersession-operator-push",
    namespace="usersession-system",
    pod_ip="10.244.1.7",
    pod_name="uso-usersession-operator-7c9d-abcde",
)


def test_the_slice_names_this_pod_as_the_services_only_endpoint() -> None:
    body = endpoint_slice(TARGET, 9443, "0b1c-uid")
    assert body["apiVersion"] == "discovery.k8s.io/v1"
    assert body["kind"] == "EndpointSlice"
    meta = body["metadata"]
    # The Service's own name: one slice per Service, so RBAC can name it.
    assert (meta["name"], meta["namespace"]) == (TARGET.service, TARGET.namespace)
    assert meta["labels"] == {
        "kubernetes.io/service-name": TARGET.service,  # how kube-proxy finds it
        "endpointslice.kubernetes.io/managed-by": "usersession-operator",
    }
    # Owned by the Service, so uninstalling the chart removes it.
    assert meta["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Service", "name": TARGET.service, "uid": "0b1c-uid"}
    ]
    assert body["addressType"] == "IPv4"
    assert body["endpoints"] == [
        {
            "addresses": ["10.244.1.7"],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "targetRef": {
                "kind": "Pod",
                "namespace": "usersession-system",
                "name": "uso-usersession-operator-7c9d-abcde",
            },
        }
    ]
    # Named as the Service's port (templates/fastwake.yaml), with the container's number.
    assert PORT_NAME == "grpc"
    assert body["ports"] == [
        {"name": "grpc", "port": 9443, "protocol": "TCP", "appProtocol": "grpc"}
    ]


def test_an_ipv6_pod_gets_an_ipv6_slice_in_canonical_form() -> None:
    target = PushEndpoints("svc", "ns", "FD00:10:244::0007")
    body = endpoint_slice(target, 9443, None)
    assert body["addressType"] == "IPv6"
    [endpoint] = body["endpoints"]
    assert endpoint["addresses"] == ["fd00:10:244::7"]
    assert "targetRef" not in endpoint  # no POD_NAME, no reference
    assert "ownerReferences" not in body["metadata"]


def test_nothing_is_published_unless_the_service_is_named() -> None:
    assert OperatorSettings.from_env({"POD_IP": "10.0.0.1"}).push_endpoints is None
    settings = OperatorSettings.from_env(
        {
            "USERSESSION_PUSH_ENDPOINTS_SERVICE": "uso-push",
            "POD_IP": "10.0.0.1",
            "POD_NAME": "uso-0",
            "POD_NAMESPACE": "ops",
        }
    )
    assert settings.push_endpoints == PushEndpoints("uso-push", "ops", "10.0.0.1", "uso-0")
    bare = OperatorSettings.from_env(
        {"USERSESSION_PUSH_ENDPOINTS_SERVICE": "uso-push", "POD_IP": "10.0.0.1"}
    )
    assert bare.push_endpoints == PushEndpoints("uso-push", "default", "10.0.0.1", None)


@pytest.mark.parametrize(
    "pod_ip", [None, "", "uso-0.example", "127.0.0.1", "::1", "169.254.1.1", "::"]
)
def test_a_named_service_needs_the_pods_ip(pod_ip: str | None) -> None:
    env = {"USERSESSION_PUSH_ENDPOINTS_SERVICE": "uso-push"}
    if pod_ip is not None:
        env["POD_IP"] = pod_ip
    with pytest.raises(ValueError, match="POD_IP must be this pod's IP address"):
        OperatorSettings.from_env(env)
