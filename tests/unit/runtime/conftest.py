"""The Kubernetes API as a recorder, for the runtime's tests that reach the controller."""

from __future__ import annotations

import pytest

from support.controllers import RecordingKube


@pytest.fixture
def kube() -> RecordingKube:
    return RecordingKube()
