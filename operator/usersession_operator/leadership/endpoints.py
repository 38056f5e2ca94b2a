"""The push Service routes to the leader alone: the leader writes its endpoints.

KEDA dials the chart's `<release>-push` Service for every ScaledObject's
external-push trigger, and only the leader serves the push port (a standby
waits in kopf's startup handler). A Service selecting both pods would send
about half of KEDA's connections to the standby, to be refused. So the Service
has no selector, and the replica that leads publishes itself as its only
endpoint: an EndpointSlice (the Service's name, labelled
kubernetes.io/service-name) holding this pod's IP and the push port, written
with server-side apply once the push server is serving. Every replica applies
under the same field manager with force, so a new leader's apply replaces the
old leader's endpoint whether or not that one cleaned up (after SIGKILL it
cannot). On a graceful stop the leader deletes the slice if it still names
this pod, so KEDA's reconnections fail fast until the next leader publishes.

Nothing is written unless USERSESSION_PUSH_ENDPOINTS_SERVICE is set (the chart
sets it; by hand, in the tests and the local stack it is not). A failure to
write is logged and retried; it never stops the operator: the redis triggers
still wake sessions, at KEDA's polling interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import kopf

from usersession_operator.backoff import Backoff
from usersession_operator.kube import endpointslices
from usersession_operator.kube.client import (
    USER_AGENT,
    ApiClient,
    ApiException,
    describe,
    load_api_client,
)
from usersession_operator.settings import OperatorSettings, PushEndpoints

log = logging.getLogger(__name__)
T = TypeVar("T")

# The same manager in every replica: see the module's docstring.
FIELD_MANAGER = "usersession-operator-push-endpoints"
MANAGED_BY = "usersession-operator"  # endpointslice.kubernetes.io/managed-by
# The Service port's name (charts/usersession-operator/templates/fastwake.yaml):
# kube-proxy pairs a Service port with the slice's port of the same name.
PORT_NAME = "grpc"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"

_RETRY = Backoff(first=2.0, ceiling=60.0)


def endpoint_slice(target: PushEndpoints, port: int, service_uid: str | None) -> dict[str, Any]:
    """The EndpointSlice naming this pod as the Service's one ready endpoint.

    With the Service's uid it is owned by the Service, as the endpointslice
    controller's own slices are: deleting the Service (uninstalling the chart)
    deletes it.
    """
    ip = ipaddress.ip_address(target.pod_ip)
    endpoint: dict[str, Any] = {
        "addresses": [str(ip)],
        "conditions": {"ready": True, "serving": True, "terminating": False},
    }
    if target.pod_name:
        endpoint["targetRef"] = {
            "kind": "Pod",
            "namespace": target.namespace,
            "name": target.pod_name,
        }
    metadata: dict[str, Any] = {
        "name": target.service,
        "namespace": target.namespace,
        "labels": {SERVICE_NAME_LABEL: target.service, MANAGED_BY_LABEL: MANAGED_BY},
    }
    if service_uid:
        metadata["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Service", "name": target.service, "uid": service_uid}
        ]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": metadata,
        "addressType": "IPv6" if ip.version == 6 else "IPv4",
        "endpoints": [endpoint],
        "ports": [{"name": PORT_NAME, "port": port, "protocol": "TCP", "appProtocol": "grpc"}],
    }


def write(api_client: ApiClient, target: PushEndpoints, port: int) -> None:
    """Apply the slice (blocking): this pod becomes the Service's only endpoint."""
    uid = endpointslices.service_uid(api_client, target.namespace, target.service)
    endpointslices.apply(api_client, endpoint_slice(target, port, uid), FIELD_MANAGER)


def remove(api_client: ApiClient, target: PushEndpoints) -> bool:
    """Delete the slice (blocking) if it still names this pod alone; True if deleted."""
    address = str(ipaddress.ip_address(target.pod_ip))
    return endpointslices.delete_if_only(api_client, target.namespace, target.service, address)


# -- wiring into the operator's startup and cleanup -------------------------------------


def publish(config: OperatorSettings, memo: kopf.Memo) -> None:
    """Start publishing this replica as the push Service's endpoint (in the background,
    retried until it succeeds), once the push server is serving; a no-op without
    USERSESSION_PUSH_ENDPOINTS_SERVICE or the push port."""
    target = config.push_endpoints
    if target is None or not config.push_port or "push_endpoints" in memo:
        return
    task = asyncio.create_task(
        _publish_until_written(target, config.push_port), name="push endpoints"
    )
    memo["push_endpoints"] = (task, target)


async def withdraw(memo: kopf.Memo) -> None:
    """On a graceful stop: remove this replica's endpoint, so KEDA's next connection
    is refused at once rather than sent to a process that is going away."""
    published: tuple[asyncio.Task[None], PushEndpoints] | None = memo.pop("push_endpoints", None)
    if published is None:
        return
    task, target = published
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    try:
        deleted = await asyncio.to_thread(_with_client, remove, target)
    except Exception as exc:  # the next leader overwrites it anyway
        log.warning("Cannot remove the push endpoint %s: %s", _where(target), describe(exc))
        return
    if deleted:
        log.info("Removed this replica from the push Service %s", _where(target))


async def _publish_until_written(target: PushEndpoints, port: int) -> None:
    failures = 0
    while True:
        try:
            await asyncio.to_thread(_with_client, write, target, port)
        except Exception as exc:
            failures += 1
            delay = _RETRY.delay(failures)
            # Loud the first time, then quieter: a missing permission or Service
            # stays missing until someone fixes it.
            (log.error if failures == 1 else log.warning)(
                "Cannot publish this replica (%s:%s) as the endpoint of the push Service %s: "
                "%s%s. KEDA's external-push connections fail until it is written; sessions "
                "still wake through their redis triggers, at KEDA's polling interval. "
                "Retrying in %.0f s",
                target.pod_ip,
                port,
                _where(target),
                describe(exc),
                _hint(exc, target),
                delay,
            )
            await asyncio.sleep(delay)
        else:
            log.info(
                "The push Service %s now routes to this replica (%s:%s)",
                _where(target),
                target.pod_ip,
                port,
            )
            return


def _with_client(fn: Callable[..., T], *args: Any) -> T:
    """fn(a fresh client, *args), the client closed after: these calls are rare."""
    with load_api_client() as api_client:
        api_client.user_agent = USER_AGENT
        return fn(api_client, *args)


def _hint(exc: BaseException, target: PushEndpoints) -> str:
    status = exc.status if isinstance(exc, ApiException) else None
    if status in (401, 403):
        return (
            f" (RBAC: the operator's ServiceAccount needs get on services/{target.service}, "
            f"create on endpointslices.discovery.k8s.io and get, patch and delete on "
            f"endpointslices/{target.service}, in {target.namespace}: the chart's "
            "-push-endpoints Role)"
        )
    if status == 404:
        return (
            f" (the Service {target.service} must exist in {target.namespace}, without a selector)"
        )
    return ""


def _where(target: PushEndpoints) -> str:
    return f"{target.namespace}/{target.service}"
