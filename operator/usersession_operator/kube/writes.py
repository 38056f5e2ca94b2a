"""Writes to the Kubernetes API: the operator's children by server-side apply (with
the replicas seed), status patches, events and expiry deletes; and the session
API's creates, deletes and scale-downs.

Calls are blocking; callers run them in worker threads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from kubernetes import client

from usersession_operator.builders import CHILD_KINDS
from usersession_operator.kube.client import ApiClient, ApiException, as_json, drain, read_or_none
from usersession_operator.session.model import API_VERSION, GROUP, KIND, PLURAL, VERSION

FIELD_MANAGER = "usersession-operator"
# Owns spec.replicas of a new Deployment until KEDA's scale updates take it over;
# see Kube.apply_deployment.
SEED_MANAGER = "usersession-operator-seed"

# kopf cuts event messages to this length too; longer ones risk being refused.
_EVENT_MESSAGE_LIMIT = 1024

_APPLY = "application/apply-patch+yaml"
_MERGE = "application/merge-patch+json"
_JSON_PATCH = "application/json-patch+json"

_RESOURCES = {c.kind: (c.group, c.version, c.plural) for c in CHILD_KINDS}


class Kube:
    def __init__(self, api_client: ApiClient, timeout: tuple[float, float] | None = None) -> None:
        """timeout: (connect, read) seconds of every call; None waits as long as it takes
        (the operator's applies at thousands of sessions), CALL_TIMEOUT answers fast."""
        self.api_client = api_client
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.version = client.VersionApi(api_client)
        self._timeout: dict[str, Any] = {"_request_timeout": timeout} if timeout else {}

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
            **self._timeout,
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
        return as_json(response)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        group, version, plural = _RESOURCES[kind]
        if not group:
            return read_or_none(
                self.core.read_namespaced_persistent_volume_claim, name, namespace, **self._timeout
            )
        return read_or_none(
            self.custom.get_namespaced_custom_object,
            group,
            version,
            namespace,
            plural,
            name,
            **self._timeout,
        )

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
            **self._timeout,
        )
        drain(response)

    def post_event(
        self,
        session: Mapping[str, Any],
        type_: str,
        reason: str,
        message: str,
        kind: str = KIND,
        api_version: str = API_VERSION,
    ) -> None:
        """A core/v1 Event about a UserSession (or, with kind, another object: the
        operator's own Pod)."""
        meta = session["metadata"]
        now = dt.datetime.now(dt.UTC)
        if len(message) > _EVENT_MESSAGE_LIMIT:
            message = message[: _EVENT_MESSAGE_LIMIT - 3] + "..."
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(
                generate_name=f"{FIELD_MANAGER}-", namespace=meta["namespace"]
            ),
            involved_object=client.V1ObjectReference(
                api_version=api_version,
                kind=kind,
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
        response = self.core.create_namespaced_event(
            meta["namespace"], event, _preload_content=False, **self._timeout
        )
        drain(response)

    def set_finalizers(
        self, namespace: str, name: str, before: list[str], after: list[str]
    ) -> bool:
        """Change a UserSession's finalizers from `before` to `after`; False, with nothing
        written, when someone changed them since (a JSON patch that tests them first:
        other writes, status ones included, cannot make it conflict)."""
        patch: list[dict[str, Any]] = [
            {"op": "test", "path": "/metadata/finalizers", "value": before or None},
            {"op": "add", "path": "/metadata/finalizers", "value": after},
        ]
        try:
            response = self.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                patch,
                _content_type=_JSON_PATCH,
                _preload_content=False,
                **self._timeout,
            )
        except ApiException as exc:
            if exc.status == 422:  # the test failed: the list is not what we read
                return False
            raise
        drain(response)
        return True

    def delete_session(self, namespace: str, name: str, uid: str | None = None) -> None:
        """Delete a UserSession; with uid, only if it is still the one with this uid (not
        one recreated under the same name meanwhile). Its finalizer then runs as usual."""
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid=uid) if uid else None
        )
        response = self.custom.delete_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            body=options,
            _preload_content=False,
            **self._timeout,
        )
        drain(response)

    # -- the session API's ---------------------------------------------------------

    def create_session(
        self, namespace: str, body: Mapping[str, Any], manager: str
    ) -> dict[str, Any]:
        response = self.custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            dict(body),
            field_manager=manager,
            _preload_content=False,
            **self._timeout,
        )
        return as_json(response)

    def scale_to_zero(self, namespace: str, deployment: str, manager: str) -> int | None:
        """Replicas before the change, or None when the Deployment does not exist (yet).

        Through the scale subresource, as KEDA does, with a resourceVersion
        precondition: if KEDA changed the scale since it was read, the write fails
        with 409 instead of silently overriding KEDA's newer decision.
        """
        scale = read_or_none(
            self.apps.read_namespaced_deployment_scale, deployment, namespace, **self._timeout
        )
        if scale is None:
            return None
        previous = int((scale.get("spec") or {}).get("replicas") or 0)
        if previous == 0:
            return 0
        patch = {
            "metadata": {"resourceVersion": scale["metadata"].get("resourceVersion")},
            "spec": {"replicas": 0},
        }
        response = self.apps.patch_namespaced_deployment_scale(
            deployment,
            namespace,
            patch,
            field_manager=manager,
            _preload_content=False,
            **self._timeout,
        )
        drain(response)
        return previous

    def ping(self) -> None:
        drain(self.version.get_code(_preload_content=False, **self._timeout))


def _seed_owns_more_than_replicas(live: Mapping[str, Any]) -> bool:
    for entry in live.get("metadata", {}).get("managedFields", []) or []:
        if entry.get("manager") == SEED_MANAGER and entry.get("operation") == "Apply":
            fields = entry.get("fieldsV1") or {}
            return fields != {"f:spec": {"f:replicas": {}}}
    return False
