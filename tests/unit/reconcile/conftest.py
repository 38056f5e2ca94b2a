"""A controller that knows one session, alice: Sleeping with its three children,
reconciled and polled. Tests change what they need and drive it on their own loop."""

from __future__ import annotations

import pytest

from support.controllers import (
    KEY,
    NAME,
    NAMESPACE,
    NoKeyspaceEvents,
    RecordingKube,
    child,
    no_secret,
    scaled_object,
)
from usersession_operator.queues.connections import RedisConnections
from usersession_operator.reconcile.controller import Controller
from usersession_operator.settings import OperatorSettings
from usersession_operator.state import QueueReading, ReconcileResult


@pytest.fixture
def kube() -> RecordingKube:
    return RecordingKube()


@pytest.fixture
def controller(kube: RecordingKube) -> Controller:
    controller = Controller(OperatorSettings(), kube, RedisConnections(no_secret))  # type: ignore[arg-type]
    controller.poller.watcher = NoKeyspaceEvents()  # type: ignore[assignment]
    state = controller.state
    state.upsert_session(
        {
            "apiVersion": "sessions.ai-infra.dev/v1alpha1",
            "kind": "UserSession",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "uid": "u-1", "generation": 1},
            "spec": {"userId": "alice@example.com", "workload": {"image": "worker:1"}},
        }
    )
    state.record_child(state.deployments, child("Deployment", spec={"replicas": 0}), False)
    state.record_child(state.trigger_authentications, child("TriggerAuthentication"), False)
    state.record_child(state.scaled_objects, scaled_object("True"), False)
    state.queues[KEY] = QueueReading(0)
    state.reconciled[KEY] = ReconcileResult(1)
    return controller
