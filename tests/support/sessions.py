"""Reading and writing UserSessions and their children in integration tests."""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client import ApiException

from usersession_localstack.loopback import wait_for
from usersession_operator.builders import CHILD_KINDS
from usersession_operator.session.model import GROUP, PLURAL, VERSION

IMAGE = "registry.example.com/session-worker:0.1.0"
# KEDA polls every second and lets a session sleep after five idle seconds, so
# tests where KEDA is the actor take seconds, not minutes.
FAST_SCALING = {"pollingIntervalSeconds": 1, "idleTimeoutSeconds": 5}
# KEDA polls only every 5 minutes: a wake within seconds can only be the push path.
SLOW_KEDA = {"pollingIntervalSeconds": 300, "idleTimeoutSeconds": 5}


def operator_metric(port: int | str, name: str) -> float:
    """The sum of an operator metric's unlabelled samples, read from its /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text: str = response.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


class Api:
    def __init__(self, api_client: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)

    def create(self, namespace: str, name: str, **spec: Any) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "UserSession",
            "metadata": {"name": name},
            "spec": {"userId": "alice@example.com", "workload": {"image": IMAGE}, **spec},
        }
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body
        )
        return created

    def session(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(GROUP, VERSION, namespace, PLURAL, name)

    def patch_spec(self, namespace: str, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, {"spec": spec}
        )

    def delete(self, namespace: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def child(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        [child] = [c for c in CHILD_KINDS if c.kind == kind]
        return self._get(child.group, child.version, namespace, child.plural, name)

    def _get(self, *where: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.custom.get_namespaced_custom_object(*where)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def create_sleeping(
        self, namespace: str, name: str, scaling: dict[str, int]
    ) -> tuple[str, str]:
        """Create a session and wait until it sleeps with KEDA ready; (name, queue)."""
        self.create(namespace, name, scaling=scaling)
        status = self.wait_status(
            namespace,
            name,
            lambda s: (
                s.get("phase") == "Sleeping"
                and any(
                    c["type"] == "ScalerReady" and c["status"] == "True"
                    for c in s.get("conditions", [])
                )
            ),
        )
        return name, status["queueName"]

    def wait_status(
        self,
        namespace: str,
        name: str,
        check: Callable[[dict[str, Any]], bool],
        timeout: float = 30,
    ) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            obj = self.session(namespace, name)
            status = (obj or {}).get("status") or {}
            return status if status and check(status) else None

        try:
            result: dict[str, Any] = wait_for(ready, timeout)
        except TimeoutError:
            raise AssertionError(
                f"status never matched; last: {(self.session(namespace, name) or {}).get('status')}"
            ) from None
        return result

    def replicas(self, namespace: str, name: str) -> int:
        scale = self.apps.read_namespaced_deployment_scale(name, namespace)
        return int(scale.spec.replicas or 0)

    def events(self, namespace: str, name: str) -> list[tuple[str, str, str]]:
        """(type, reason, message) of the events about one object, oldest first."""
        items = self.core.list_namespaced_event(namespace).items
        return [(e.type, e.reason, e.message) for e in items if e.involved_object.name == name]

    def wait_replicas(self, namespace: str, name: str, replicas: int, timeout: float = 30) -> None:
        """Until KEDA (the only one that scales sessions) has set the Deployment's replicas."""
        try:
            wait_for(lambda: self.replicas(namespace, name) == replicas, timeout)
        except TimeoutError:
            raise AssertionError(
                f"replicas stayed {self.replicas(namespace, name)}, expected {replicas}"
            ) from None


def unique(prefix: str = "s") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions", []) if c["type"] == type_)
