"""The session API's writes: creating, deleting and scaling sessions, through kube/.

Every call runs in a worker thread with kube/'s call timeout, and every failure
becomes a JSON error (ApiError) the caller can answer with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from usersession_operator.kube.client import (
    CALL_TIMEOUT,
    ApiClient,
    ApiException,
    describe,
    server_message,
    unreachable,
)
from usersession_operator.kube.writes import Kube
from usersession_operator.session.model import API_VERSION, GROUP, KIND
from usersession_operator.sessionapi.errors import ApiError, kubernetes_unavailable

FIELD_MANAGER = "usersession-api"
CREATED_BY_LABEL = f"{GROUP}/created-by"

T = TypeVar("T")


class SessionStore:
    def __init__(self, api_client: ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self.kube = Kube(api_client, CALL_TIMEOUT)

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
        return await _call(self.kube.create_session, self.namespace, body, FIELD_MANAGER)

    async def delete(self, name: str) -> bool:
        """False when there was nothing to delete."""
        try:
            await _call(self.kube.delete_session, self.namespace, name)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def scale_to_zero(self, deployment: str) -> int | None:
        """Replicas before the change, or None when the Deployment does not exist (yet);
        a 409 when KEDA changed the scale meanwhile (see Kube.scale_to_zero)."""
        return await _call(self.kube.scale_to_zero, self.namespace, deployment, FIELD_MANAGER)

    async def ping(self) -> None:
        await _call(self.kube.ping)


async def _call(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking call in a thread, turning its failures into ApiErrors."""
    try:
        return await asyncio.to_thread(fn, *args)
    except ApiException as exc:
        raise _api_error(exc) from None
    except Exception as exc:
        if not unreachable(exc):
            raise
        raise kubernetes_unavailable(describe(exc)) from None


def _api_error(exc: ApiException) -> ApiError:
    message = server_message(exc)
    if exc.status in (400, 404, 409, 422):
        code = {400: "bad_request", 404: "not_found", 409: "conflict", 422: "rejected"}[exc.status]
        return ApiError(exc.status, code, message)
    # 401/403 are the API's own credentials or RBAC, not the caller's fault; 5xx is the server's.
    return kubernetes_unavailable(message)
