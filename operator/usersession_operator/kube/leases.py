"""One coordination.k8s.io/v1 Lease, read and written for leader election (blocking calls).

Plain dicts and raw JSON both ways: the generated model would format MicroTime
with isoformat(), which drops the microseconds when they are 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client

from usersession_operator.kube.client import LEASE_TIMEOUT, ApiClient, as_json, read_or_none


class LeaseApi:
    def __init__(self, api_client: ApiClient, namespace: str, name: str) -> None:
        self.api = client.CoordinationV1Api(api_client)
        self.namespace, self.name = namespace, name

    def read(self) -> dict[str, Any] | None:
        return read_or_none(
            self.api.read_namespaced_lease,
            self.name,
            self.namespace,
            _request_timeout=LEASE_TIMEOUT,
        )

    def create(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        body: Any = {"metadata": {"name": self.name}, "spec": dict(spec)}
        response: Any = self.api.create_namespaced_lease(
            self.namespace, body, _preload_content=False, _request_timeout=LEASE_TIMEOUT
        )
        return as_json(response)

    def replace(self, resource_version: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Write `spec` over the Lease at that version: a 409 if anyone wrote it since."""
        body: Any = {
            "metadata": {"name": self.name, "resourceVersion": resource_version},
            "spec": dict(spec),
        }
        response: Any = self.api.replace_namespaced_lease(
            self.name,
            self.namespace,
            body,
            _preload_content=False,
            _request_timeout=LEASE_TIMEOUT,
        )
        return as_json(response)
