"""The session API's writes: creating, deleting and scaling sessions through the API.

The official client is blocking, so every call runs in a worker thread, and
every failure becomes a JSON error (ApiError) the caller can answer with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import urllib3
from kubernetes import client
from kubernetes.client import ApiException

from usersession_operator.kube.client import config_map_value, secret_value, server_message
from usersession_operator.session.model import API_VERSION, GROUP, KIND, PLURAL, VERSION
from usersession_operator.sessionapi.errors import ApiError, kubernetes_unavailable

FIELD_MANAGER = "usersession-api"
CREATED_BY_LABEL = f"{GROUP}/created-by"
# (connect, read) seconds; a down API server must turn into a 503, not a hang.
REQUEST_TIMEOUT = (3.0, 15.0)

T = TypeVar("T")


class SessionStore:
    """Writes to the Kubernetes API, each in a worker thread with a bounded timeout."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self._custom = client.CustomObjectsApi(api_client)
        self._apps = client.AppsV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        self._version = client.VersionApi(api_client)

    async def create(
        self,
        name: str,
        user_id: str,
        image: str,
        env: Mapping[str, str],
        storage: Mapping[str, str] | None = None,
        expire_after_idle: int | None = None,
    ) -> dict[str, Any]:
        workload: dict[str, Any] = {"image": image}
        if env:
            workload["env"] = [{"name": k, "value": v} for k, v in sorted(env.items())]
        spec: dict[str, Any] = {"userId": user_id, "workload": workload}
        if storage is not None:
            spec["storage"] = dict(storage)
        if expire_after_idle is not None:
            spec["expireAfterIdleSeconds"] = expire_after_idle
        body = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": name, "labels": {CREATED_BY_LABEL: FIELD_MANAGER}},
            "spec": spec,
        }
        created = await _call(
            self._custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            body,
            field_manager=FIELD_MANAGER,
        )
        assert isinstance(created, dict)
        return created

    async def delete(self, name: str) -> bool:
        """False when there was nothing to delete."""
        try:
            await _call(
                self._custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                name,
            )
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def scale_to_zero(self, deployment: str) -> int | None:
        """Replicas before the change, or None when the Deployment does not exist (yet).

        Goes through the scale subresource, as KEDA does, with a resourceVersion
        precondition: if KEDA changed the scale since it was read, the write
        fails with 409 instead of silently overriding KEDA's newer decision.
        """
        try:
            scale = await _call(
                self._apps.read_namespaced_deployment_scale, deployment, self.namespace
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        previous = int((scale.spec and scale.spec.replicas) or 0)
        if previous == 0:
            return 0
        patch = {
            "metadata": {"resourceVersion": scale.metadata and scale.metadata.resource_version},
            "spec": {"replicas": 0},
        }
        await _call(
            self._apps.patch_namespaced_deployment_scale,
            deployment,
            self.namespace,
            patch,
            field_manager=FIELD_MANAGER,
        )
        return previous

    async def read_secret_value(self, namespace: str, name: str, key: str) -> str:
        try:
            secret = await _call(self._core.read_namespaced_secret, name, namespace)
        except ApiError as exc:
            raise LookupError(f"cannot read Secret {namespace}/{name}: {exc.message}") from None
        try:
            return secret_value(secret, namespace, name, key)
        except KeyError as exc:
            raise LookupError(str(exc.args[0])) from None

    async def read_config_map_value(self, namespace: str, name: str, key: str) -> str:
        try:
            config_map = await _call(self._core.read_namespaced_config_map, name, namespace)
        except ApiError as exc:
            raise LookupError(f"cannot read ConfigMap {namespace}/{name}: {exc.message}") from None
        try:
            return config_map_value(config_map, namespace, name, key)
        except KeyError as exc:
            raise LookupError(str(exc.args[0])) from None

    async def ping(self) -> None:
        await _call(self._version.get_code)


async def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking client call in a thread, turning its failures into ApiErrors."""
    kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except ApiException as exc:
        raise _api_error(exc) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise kubernetes_unavailable(describe_failure(exc)) from None


def _api_error(exc: ApiException) -> ApiError:
    message = server_message(exc)
    if exc.status in (400, 404, 409, 422):
        code = {400: "bad_request", 404: "not_found", 409: "conflict", 422: "rejected"}[exc.status]
        return ApiError(exc.status, code, message)
    # 401/403 are the API's own credentials or RBAC, not the caller's fault; 5xx is the server's.
    return kubernetes_unavailable(message)


def describe_failure(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return server_message(exc)
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    return f"{type(exc).__name__}: {exc}"[:300]
