"""Where the operator talks to the Kubernetes API (besides kopf's own watching).

One client library for all of it: the official `kubernetes` client. kopf already
needs it for login, it speaks server-side apply, and a second library (pykube-ng
has had no release since 2023) would mean two auth stacks to keep working.
Calls here are blocking; the handlers run them in worker threads. Watching the
children is in watching.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kubernetes import client, config
from kubernetes.client import ApiException, rest

if TYPE_CHECKING:
    import kopf

from usersession_operator.builders import CHILD_KINDS
from usersession_operator.session.model import API_VERSION, GROUP, KIND, PLURAL, VERSION

FIELD_MANAGER = "usersession-operator"
# Owns spec.replicas of a new Deployment until KEDA's scale updates take it over;
# see Kube.apply_deployment.
SEED_MANAGER = "usersession-operator-seed"

# How the operator's own requests name themselves (in audit logs, for one);
# kopf's say kopf/<version>.
USER_AGENT = "usersession-operator"

# Worker threads (and pooled connections) for blocking API calls; the watches
# hold one connection each on top.
API_CONCURRENCY = 32
WATCH_CONNECTIONS = 8

# kopf cuts event messages to this length too; longer ones risk being refused.
_EVENT_MESSAGE_LIMIT = 1024

_APPLY = "application/apply-patch+yaml"
_MERGE = "application/merge-patch+json"

_RESOURCES = {c.kind: (c.group, c.version, c.plural) for c in CHILD_KINDS}


def server_message(exc: ApiException) -> str:
    """The API server's own message (a schema, CEL or RBAC refusal), without headers."""
    try:
        body = json.loads(exc.body or "")
    except (ValueError, TypeError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return f"{exc.status} {exc.reason}"


def describe_api_error(exc: ApiException) -> str:
    """Status line and message, for logs, events and status conditions."""
    message = server_message(exc)
    prefix = f"{exc.status} {exc.reason}"
    return message if message == prefix else f"{prefix}: {message}"


def secret_value(secret: Any, namespace: str, name: str, key: str) -> str:
    """One key of a Secret the client read; KeyError naming it when absent."""
    data = (secret.data or {}).get(key)
    if data is None:
        raise KeyError(f"Secret {namespace}/{name} has no key {key!r}")
    return base64.b64decode(data).decode()


def config_map_value(config_map: Any, namespace: str, name: str, key: str) -> str:
    """One key of a ConfigMap (a Redis CA bundle); KeyError naming it when absent."""
    value = (config_map.data or {}).get(key)
    if value is None:
        raise KeyError(f"ConfigMap {namespace}/{name} has no key {key!r}")
    return str(value)


def load_api_client(connections: int | None = None) -> client.ApiClient:
    """In-cluster config when running in a pod, else KUBECONFIG / ~/.kube/config;
    `connections`: the size of its connection pool, when not the library's default.

    KUBECONFIG is read at call time: the client library reads it once, at import.
    """
    api_client: client.ApiClient
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        api_client = client.ApiClient()
    else:
        api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=os.environ.get("KUBECONFIG") or None
        )
    if connections is not None:
        api_client.configuration.connection_pool_maxsize = connections
        api_client.rest_client = rest.RESTClientObject(api_client.configuration)
    return api_client


def operator_api_client() -> client.ApiClient:
    """The operator's client: a pool for its worker threads and watches, its own name."""
    api_client = load_api_client(API_CONCURRENCY + WATCH_CONNECTIONS)
    api_client.user_agent = USER_AGENT
    return api_client


def connection_info() -> kopf.ConnectionInfo:
    """kopf's credentials, from the very configuration our own client uses.

    kopf's built-in login goes through the client library's default kubeconfig
    path, which is frozen when the library is imported; this one is not.
    """
    import kopf  # here, not at the top: the session API uses this module without kopf

    conf = load_api_client().configuration
    header = conf.get_api_key_with_prefix("BearerToken") or conf.get_api_key_with_prefix(
        "authorization"
    )
    scheme, _, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=conf.host,
        ca_path=conf.ssl_ca_cert,
        insecure=not conf.verify_ssl,
        certificate_path=conf.cert_file,
        private_key_path=conf.key_file,
        scheme=scheme or ("Bearer" if token else None),
        token=token or None,
    )


class Kube:
    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)

    # -- children ----------------------------------------------------------

    def apply(
        self, body: Mapping[str, Any], manager: str = FIELD_MANAGER, force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply under `manager`; `force` takes back fields others edited (drift)."""
        group, version, plural = _RESOURCES[body["kind"]]
        meta = body["metadata"]
        options: dict[str, Any] = {
            "field_manager": manager,
            "force": force,
            "_content_type": _APPLY,
            "_preload_content": False,  # the generated client drops the body of a 201 (create)
        }
        response: Any
        if not group:  # the core group lives under /api, which the custom-objects client misses
            response = self.core.patch_namespaced_persistent_volume_claim(
                meta["name"], meta["namespace"], dict(body), **options
            )
        else:
            response = self.custom.patch_namespaced_custom_object(
                group, version, meta["namespace"], plural, meta["name"], dict(body), **options
            )
        return _json(response)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        group, version, plural = _RESOURCES[kind]
        response: Any
        try:
            if not group:
                response = self.core.read_namespaced_persistent_volume_claim(
                    name, namespace, _preload_content=False
                )
            else:
                response = self.custom.get_namespaced_custom_object(
                    group, version, namespace, plural, name, _preload_content=False
                )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return _json(response)

    def apply_deployment(
        self,
        body: Mapping[str, Any],
        initial: Mapping[str, Any],
        seed: Mapping[str, Any],
        exists: bool,
    ) -> dict[str, Any]:
        """Apply the session's Deployment without ever writing replicas after creation.

        KEDA owns spec.replicas. A new Deployment must start at 0, not at the
        default 1, yet the main manager must never own replicas: if it did and
        later applied without the field, the API server would remove it and
        the Deployment would fall back to 1, killing KEDA's decision. So a
        separate seed manager creates the Deployment, replicas 0 included: one
        write. The first later apply (a spec change, a drift) is the main
        manager's, after which the seed lets go of everything but replicas,
        which KEDA's first scale update takes over. Until then the seed owns
        the fields it created, which is harmless: nobody else applies them.
        """
        if not exists:
            return self.apply(initial, SEED_MANAGER)
        live = self.apply(body)
        if _seed_owns_more_than_replicas(live):
            self._release_seed(seed)
        return live

    def _release_seed(self, seed: Mapping[str, Any]) -> None:
        try:
            self.apply(seed, SEED_MANAGER, force=False)
        except ApiException as exc:
            if exc.status != 409:
                raise
            # Someone (KEDA) already scaled it: replicas is theirs, the seed lets go of all.
            empty = {k: seed[k] for k in ("apiVersion", "kind")} | {
                "metadata": dict(seed["metadata"])
            }
            self.apply(empty, SEED_MANAGER)

    # -- the UserSession -----------------------------------------------------

    def patch_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        response = self.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"status": dict(patch)},
            _content_type=_MERGE,
            _preload_content=False,
        )
        _drain(response)

    def post_event(self, session: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """A core/v1 Event about a UserSession, for callers outside kopf's handlers.

        kopf.warn needs a queue kopf only sets up while it handles an object's
        watch event, so it fails in the poller.
        """
        meta = session["metadata"]
        now = dt.datetime.now(dt.UTC)
        if len(message) > _EVENT_MESSAGE_LIMIT:
            message = message[: _EVENT_MESSAGE_LIMIT - 3] + "..."
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(
                generate_name=f"{FIELD_MANAGER}-", namespace=meta["namespace"]
            ),
            involved_object=client.V1ObjectReference(
                api_version=API_VERSION,
                kind=KIND,
                namespace=meta["namespace"],
                name=meta["name"],
                uid=meta.get("uid"),
            ),
            type=type_,
            reason=reason,
            message=message,
            source=client.V1EventSource(component=FIELD_MANAGER),
            first_timestamp=now,
            last_timestamp=now,
            count=1,
        )
        _drain(self.core.create_namespaced_event(meta["namespace"], event, _preload_content=False))

    def delete_session(self, namespace: str, name: str, uid: str) -> None:
        """Delete a UserSession, only if it is still the one with this uid (not one
        recreated under the same name meanwhile). Its finalizer then runs as usual."""
        response = self.custom.delete_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)),
            _preload_content=False,
        )
        _drain(response)

    def read_secret_value(self, namespace: str, name: str, key: str) -> str:
        secret = self.core.read_namespaced_secret(name, namespace)
        return secret_value(secret, namespace, name, key)

    def read_config_map_value(self, namespace: str, name: str, key: str) -> str:
        config_map = self.core.read_namespaced_config_map(name, namespace)
        return config_map_value(config_map, namespace, name, key)


def _drain(response: Any) -> None:
    """Read an answer nobody needs: a response left unread never gives its
    connection back to the pool, and the next call pays a new TLS handshake
    (measured: one per status write at ten thousand sessions)."""
    response.read()
    response.release_conn()


def _json(response: Any) -> dict[str, Any]:
    payload = json.loads(response.data)
    assert isinstance(payload, dict)
    return payload


def _seed_owns_more_than_replicas(live: Mapping[str, Any]) -> bool:
    for entry in live.get("metadata", {}).get("managedFields", []) or []:
        if entry.get("manager") == SEED_MANAGER and entry.get("operation") == "Apply":
            fields = entry.get("fieldsV1") or {}
            return fields != {"f:spec": {"f:replicas": {}}}
    return False
