"""UserSession objects: writes through the Kubernetes API, reads from a watch-backed cache.

The official client is blocking, so every call runs in a worker thread. Reads
for `status` and `sessions` never go to the API server: a background thread
lists the namespace's UserSessions once, then follows a watch from that
resourceVersion, and lists again when the server answers 410 Gone (the
version fell out of its history) or the connection breaks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import urllib3
from kubernetes import client
from kubernetes.client import ApiException

from usersession_operator.kube import secret_value, server_message
from usersession_operator.model import API_VERSION, GROUP, KIND, PLURAL, VERSION
from usersession_operator.status import Phase

from .errors import ApiError, bad_request, kubernetes_unavailable

log = logging.getLogger(__name__)

FIELD_MANAGER = "usersession-api"
CREATED_BY_LABEL = f"{GROUP}/created-by"
# Server-side end of one watch request; the thread then continues from the
# last resourceVersion it saw, which costs no relist.
WATCH_SECONDS = 60
# (connect, read) seconds; a down API server must turn into a 503, not a hang.
_TIMEOUT = (3.0, 15.0)

T = TypeVar("T")


class _Gone(Exception):
    """The watch's resourceVersion is too old: list again."""


class SessionCache:
    """UserSessions of one namespace, kept current by a list + watch thread."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self._custom = client.CustomObjectsApi(api_client)
        self._namespace = namespace
        self._objects: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, name="usersession-watch", daemon=True)
        self.synced = threading.Event()
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            # Unblocks the thread's read of the open watch at once.
            response.shutdown()
        self._thread.join(timeout=5)

    # -- reads -------------------------------------------------------------

    def get(self, name: str) -> dict[str, Any] | None:
        self._require_synced()
        with self._lock:
            return self._objects.get(name)

    def all(self) -> list[dict[str, Any]]:
        self._require_synced()
        with self._lock:
            return list(self._objects.values())

    def remember(self, obj: Mapping[str, Any]) -> None:
        """Show an object just created by this process before its watch event arrives."""
        name = obj["metadata"]["name"]
        with self._lock:
            self._objects.setdefault(name, dict(obj))

    def _require_synced(self) -> None:
        if not self.synced.is_set():
            reason = self.last_error or "the session cache has not finished its first list"
            raise kubernetes_unavailable(reason)

    # -- the watch thread --------------------------------------------------

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                version = self._list()
                backoff = 0.5
                while not self._stop.is_set():
                    version = self._watch(version)
            except _Gone:
                log.info("UserSession watch expired (410 Gone); listing again")
                continue
            except Exception as exc:  # API down, network cut: keep serving what we have
                if self._stop.is_set():
                    return
                self.last_error = _describe(exc)
                log.warning(
                    "UserSession watch failed: %s; retrying in %.1fs", self.last_error, backoff
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def _list(self) -> str:
        listing: Any = self._custom.list_namespaced_custom_object(
            GROUP, VERSION, self._namespace, PLURAL, _request_timeout=_TIMEOUT
        )
        objects = {item["metadata"]["name"]: item for item in listing.get("items", [])}
        with self._lock:
            self._objects = objects
        self.last_error = None
        self.synced.set()
        return str(listing["metadata"]["resourceVersion"])

    def _watch(self, version: str) -> str:
        try:
            response: Any = self._custom.list_namespaced_custom_object(
                GROUP,
                VERSION,
                self._namespace,
                PLURAL,
                watch=True,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_SECONDS,
                _preload_content=False,
                _request_timeout=(_TIMEOUT[0], WATCH_SECONDS + 30),
            )
        except ApiException as exc:
            if exc.status == 410:
                raise _Gone from None
            raise
        self._response = response
        try:
            # urllib3 yields the stream line by line; the API server sends one event a line.
            for line in response:
                if line.strip():
                    version = self._apply(json.loads(line), version)
        finally:
            self._response = None
            response.release_conn()
        return version

    def _apply(self, event: Mapping[str, Any], version: str) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone
            raise RuntimeError(f"watch error: {obj.get('message') or obj}")
        metadata = obj.get("metadata") or {}
        if kind != "BOOKMARK":
            with self._lock:
                if kind == "DELETED":
                    self._objects.pop(metadata["name"], None)
                else:
                    self._objects[metadata["name"]] = obj
        return str(metadata.get("resourceVersion") or version)


class SessionStore:
    """Writes to the Kubernetes API, each in a worker thread with a bounded timeout."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self._custom = client.CustomObjectsApi(api_client)
        self._apps = client.AppsV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        self._version = client.VersionApi(api_client)

    async def create(
        self, name: str, user_id: str, image: str, env: Mapping[str, str]
    ) -> dict[str, Any]:
        workload: dict[str, Any] = {"image": image}
        if env:
            workload["env"] = [{"name": k, "value": v} for k, v in sorted(env.items())]
        body = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": name, "labels": {CREATED_BY_LABEL: FIELD_MANAGER}},
            "spec": {"userId": user_id, "workload": workload},
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

    async def ping(self) -> None:
        await _call(self._version.get_code)


async def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking client call in a thread, turning its failures into ApiErrors."""
    kwargs.setdefault("_request_timeout", _TIMEOUT)
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except ApiException as exc:
        raise _api_error(exc) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise kubernetes_unavailable(_describe(exc)) from None


def _api_error(exc: ApiException) -> ApiError:
    message = server_message(exc)
    if exc.status in (400, 404, 409, 422):
        code = {400: "bad_request", 404: "not_found", 409: "conflict", 422: "rejected"}[exc.status]
        return ApiError(exc.status, code, message)
    # 401/403 are the API's own credentials or RBAC, not the caller's fault; 5xx is the server's.
    return kubernetes_unavailable(message)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return server_message(exc)
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    return f"{type(exc).__name__}: {exc}"[:300]


# -- views -------------------------------------------------------------------------


def owner(obj: Mapping[str, Any]) -> str:
    return str((obj.get("spec") or {}).get("userId") or "")


def deleting(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def phase(obj: Mapping[str, Any]) -> str:
    if deleting(obj):
        return Phase.TERMINATING
    # Before the operator's first status write the session is, to a caller, pending.
    return str((obj.get("status") or {}).get("phase") or Phase.PENDING)


def summary(obj: Mapping[str, Any]) -> dict[str, Any]:
    metadata, status = obj.get("metadata") or {}, obj.get("status") or {}
    return {
        "id": metadata.get("name"),
        "user_id": owner(obj),
        "phase": phase(obj),
        "queue_depth": status.get("queueDepth"),
        "processing_depth": status.get("processingDepth"),
        "created_at": metadata.get("creationTimestamp"),
    }


def view(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the operator mirrors into status, in the API's snake_case."""
    status = obj.get("status") or {}
    pod = status.get("pod")
    return {
        **summary(obj),
        "suspended": bool((obj.get("spec") or {}).get("suspend")),
        "queue_name": status.get("queueName"),
        "replicas": status.get("replicas"),
        "ready_replicas": status.get("readyReplicas"),
        "pod": (
            {"name": pod.get("name"), "phase": pod.get("phase"), "ready": pod.get("ready")}
            if isinstance(pod, Mapping)
            else None
        ),
        "conditions": [
            {
                "type": c.get("type"),
                "status": c.get("status"),
                "reason": c.get("reason"),
                "message": c.get("message"),
                "last_transition_time": c.get("lastTransitionTime"),
            }
            for c in status.get("conditions") or []
        ],
        "last_activity_time": status.get("lastActivityTime"),
        "observed_generation": status.get("observedGeneration"),
        "generation": (obj.get("metadata") or {}).get("generation"),
    }


# -- pagination --------------------------------------------------------------------


def page(
    objects: Iterable[Mapping[str, Any]], limit: int, token: str | None
) -> tuple[list[Mapping[str, Any]], str | None]:
    """One page in (creationTimestamp, name) order; the token names the last item served.

    A cursor rather than an offset: sessions created or deleted between pages
    neither repeat nor skip the others.
    """
    ordered = sorted(objects, key=_sort_key)
    if token:
        after = _decode_token(token)
        ordered = [o for o in ordered if _sort_key(o) > after]
    items = ordered[:limit]
    more = len(ordered) > limit
    return items, _encode_token(_sort_key(items[-1])) if more else None


def _sort_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("creationTimestamp") or ""), str(metadata.get("name") or "")


def _encode_token(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def _decode_token(token: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        value = None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise bad_request("invalid_query", "continue is not a token from a previous page")
    return value[0], value[1]
