"""status_patch: the JSON merge patch from the written status to the wanted one."""

from __future__ import annotations

import copy

import pytest

from support.statuses import (
    SCENARIOS,
    as_served,
    merge_patch,
    observe,
)
from usersession_operator.session.model import Phase
from usersession_operator.status.compute import (
    compute_status,
    status_patch,
)
from usersession_operator.status.observation import Observation

# -- status_patch ------------------------------------------------------------------


def test_no_patch_for_equal_status() -> None:
    status = compute_status(observe(), {})
    assert status_patch(status, copy.deepcopy(status)) is None
    assert status_patch({}, {}) is None


def test_patch_holds_only_changed_keys() -> None:
    previous = compute_status(observe(), {})
    desired = copy.deepcopy(previous)
    desired["queueDepth"] = 9
    desired["phase"] = Phase.WAKING
    assert status_patch(previous, desired) == {"queueDepth": 9, "phase": Phase.WAKING}


def test_patch_removes_keys_with_none() -> None:
    previous = {"phase": Phase.RUNNING, "pod": {"name": "p", "phase": "Running", "ready": True}}
    assert status_patch(previous, {"phase": Phase.SLEEPING}) == {
        "phase": Phase.SLEEPING,
        "pod": None,
    }


def test_patch_adds_new_keys() -> None:
    assert status_patch({"phase": Phase.SLEEPING}, {"phase": Phase.SLEEPING, "queueDepth": 0}) == {
        "queueDepth": 0
    }


def test_patch_replaces_lists_whole() -> None:
    previous = {"conditions": [{"type": "Ready", "status": "True"}, {"type": "X", "status": "U"}]}
    desired = {"conditions": [{"type": "Ready", "status": "False"}]}
    assert status_patch(previous, desired) == desired


def test_patch_removes_keys_inside_changed_objects() -> None:
    # A merge patch merges objects, so a key dropped inside one must be nulled.
    previous = {"children": {"deployment": "a", "scaledObject": "a", "legacyService": "a"}}
    desired = {"children": {"deployment": "b", "scaledObject": "b"}}
    patch = status_patch(previous, desired)
    assert patch is not None
    assert merge_patch(previous, patch) == desired


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (SCENARIOS[Phase.SLEEPING], SCENARIOS[Phase.RUNNING]),
        (SCENARIOS[Phase.RUNNING], SCENARIOS[Phase.SLEEPING]),
        (SCENARIOS[Phase.RUNNING], SCENARIOS[Phase.PENDING]),
        (SCENARIOS[Phase.WAKING], SCENARIOS[Phase.TERMINATING]),
        (SCENARIOS[Phase.SUSPENDED], SCENARIOS[Phase.DEGRADED]),
    ],
)
def test_applying_the_patch_yields_the_desired_status(
    before: Observation, after: Observation
) -> None:
    previous = as_served(compute_status(before, {}))
    desired = compute_status(after, previous)
    patch = status_patch(previous, desired)
    assert patch is not None
    assert merge_patch(previous, patch) == desired
