"""The Kubernetes client, set up once for every caller: configuration, the operator's
own pooled client, kopf's login, one timeout policy, and one way to describe a failure.

One client library for all of it: the official `kubernetes` client. kopf already
needs it for login, it speaks server-side apply, and a second library (pykube-ng
has had no release since 2023) would mean two auth stacks to keep working. Its
calls are blocking; callers run them in worker threads. The rest of the product
imports the library's names from here (ApiClient, ApiException), never the library.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import urllib3
from kubernetes import client, config
from kubernetes.client import ApiClient, ApiException, rest

if TYPE_CHECKING:
    import kopf

__all__ = ["ApiClient", "ApiException"]

# How the operator's own requests name themselves (in audit logs, for one);
# kopf's say kopf/<version>.
USER_AGENT = "usersession-operator"

# Worker threads (and pooled connections) for blocking API calls; the watches
# hold one connection each on top.
API_CONCURRENCY = 32
WATCH_CONNECTIONS = 8

# (connect, read) seconds. A call that should answer at once: a down API server
# must become an error the caller reports, not a thread blocked for ever.
CALL_TIMEOUT = (3.0, 15.0)
# Lease calls: less than a renew period, so a hung one cannot make the leader
# miss its deadline.
LEASE_TIMEOUT = (2.0, 3.0)


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


def describe(exc: BaseException) -> str:
    """Any failure of a call: the API server's answer, or what broke on the way to it."""
    if isinstance(exc, ApiException):
        return describe_api_error(exc)
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    text = str(exc)
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:300]


def unreachable(exc: BaseException) -> bool:
    """Whether a call failed before the API server answered (down, cut, timed out)."""
    return isinstance(exc, urllib3.exceptions.HTTPError | OSError)


def as_json(response: Any) -> dict[str, Any]:
    """The body of a response read with _preload_content=False, as the server sent it."""
    payload = json.loads(response.data)
    assert isinstance(payload, dict)
    return payload


def drain(response: Any) -> None:
    """Read an answer nobody needs: a response left unread never gives its
    connection back to the pool, and the next call pays a new TLS handshake
    (measured: one per status write at ten thousand sessions)."""
    response.read()
    response.release_conn()


def read_or_none(read: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any] | None:
    """The object a read returns, as plain JSON, or None when it does not exist (404)."""
    try:
        response = read(*args, _preload_content=False, **kwargs)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return as_json(response)


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
