"""The controller's collaborators in memory, for unit tests: the Kubernetes API as a
recorder, no keyspace events, no Secrets. The integration tier uses the real ones."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from usersession_operator.reconcile.controller import Controller
from usersession_operator.session.names import INSTANCE_LABEL

NAMESPACE, NAME = "team-a", "alice"
KEY = (NAMESPACE, NAME)
WRONGPASS = "error establishing redis connection: WRONGPASS invalid username-password pair"


class RecordingKube:
    """Kube's interface, in memory: records writes, can be told to refuse applies."""

    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []
        self.events: list[tuple[str, str, str, str]] = []
        self.calls: list[str] = []
        self.applied: list[dict[str, Any]] = []
        self.event_error: Exception | None = None
        self.apply_error: Exception | None = None
        self.api_client = None

    def apply(self, body: dict[str, Any], *_: Any, **__: Any) -> dict[str, Any]:
        if self.apply_error is not None:
            raise self.apply_error
        self.applied.append(copy.deepcopy(body))
        self.calls.append(f"apply {body['kind']}")
        return copy.deepcopy(body)

    def apply_deployment(
        self, body: dict[str, Any], initial: dict[str, Any], *_: Any, exists: bool = True
    ) -> dict[str, Any]:
        # As Kube does: a new Deployment is made by the create body alone.
        return self.apply(body if exists else initial)

    def get(self, *_: Any) -> dict[str, Any] | None:
        return None

    def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.patches.append(copy.deepcopy(patch))
        self.calls.append(f"status {patch.get('phase')}")

    def set_finalizers(
        self, namespace: str, name: str, before: list[str], after: list[str]
    ) -> bool:
        self.calls.append(f"finalizers {after}")
        return True

    def delete_session(self, namespace: str, name: str, uid: str | None = None) -> None:
        self.calls.append(f"delete {name} {uid}")

    def post_event(
        self, session: dict[str, Any], type_: str, reason: str, message: str, *kind: str
    ) -> None:
        if self.event_error is not None:
            raise self.event_error
        self.events.append((session["metadata"]["name"], type_, reason, message))
        self.calls.append(f"event {reason}")


class NoKeyspaceEvents:
    """The Redis side's notifications, absent: these tests drive readings by hand."""

    def add(self, *_: Any) -> None:
        return None

    def remove(self, *_: Any) -> None:
        return None

    async def close(self) -> None:
        return None


async def no_secret(namespace: str, name: str, key: str) -> str:
    raise LookupError(f"no Secret {namespace}/{name} in these tests")


def child(kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {INSTANCE_LABEL: NAME}},
        **extra,
    }


def scaled_object(ready: str, message: str = "ready for scaling") -> dict[str, Any]:
    reason = "ScaledObjectReady" if ready == "True" else "ScaledObjectCheckFailed"
    condition = {"type": "Ready", "status": ready, "reason": reason, "message": message}
    return child("ScaledObject", status={"conditions": [condition]})


def refresh(controller: Controller) -> None:
    asyncio.run(controller.status.refresh(KEY))


def body(controller: Controller) -> dict[str, Any]:
    return copy.deepcopy(controller.state.sessions[KEY])
