"""The operator's budget: its memory limit, found where a pod has it, and its capacity."""

from __future__ import annotations

import asyncio
from pathlib import Path

from support.controllers import RecordingKube
from usersession_operator import metrics
from usersession_operator.queues.connections import RedisConnections
from usersession_operator.reconcile.controller import Controller
from usersession_operator.runtime.budget import Capacity, memory_limit
from usersession_operator.settings import OperatorSettings

MIB = 1024 * 1024


def _cgroup(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text + "\n")
    return path


def test_the_charts_value_wins_then_cgroup_v2_then_v1(tmp_path: Path) -> None:
    v2 = _cgroup(tmp_path, "memory.max", str(512 * MIB))
    v1 = _cgroup(tmp_path, "limit_in_bytes", str(256 * MIB))
    none = tmp_path / "absent"
    assert memory_limit({"USERSESSION_MEMORY_LIMIT": str(768 * MIB)}, v2, v1) == 768 * MIB
    assert memory_limit({}, v2, v1) == 512 * MIB
    assert memory_limit({}, none, v1) == 256 * MIB
    assert memory_limit({}, none, none) is None


def test_no_limit_is_no_limit_in_either_cgroup_version(tmp_path: Path) -> None:
    unlimited_v2 = _cgroup(tmp_path, "memory.max", "max")
    unlimited_v1 = _cgroup(tmp_path, "limit_in_bytes", str(9223372036854771712))
    none = tmp_path / "absent"
    assert memory_limit({}, unlimited_v2, none) is None
    assert memory_limit({}, none, unlimited_v1) is None
    # The downward API with no limit set gives the node's allocatable; "0" or junk is ignored.
    assert memory_limit({"USERSESSION_MEMORY_LIMIT": "0"}, none, none) is None
    assert memory_limit({"USERSESSION_MEMORY_LIMIT": "lots"}, unlimited_v2, none) is None


def test_past_capacity_is_said_once_until_the_count_is_well_below_again() -> None:
    capacity = Capacity(100)
    assert [capacity.exceeded_now(n) for n in (99, 101, 150, 95, 101)] == [
        False,
        True,
        False,
        False,
        False,
    ]
    assert capacity.exceeded_now(89) is False  # under 90%: rearmed
    assert capacity.exceeded_now(120) is True
    assert Capacity(0).exceeded_now(10**6) is False  # not stated: nothing to say
    assert "USERSESSION_CAPACITY" in capacity.message(120)


def test_the_controller_warns_in_an_event_on_its_pod_once_and_the_metric_counts(
    kube: RecordingKube,
) -> None:
    async def no_secret(*_: str) -> str:
        raise LookupError("none")

    settings = OperatorSettings(capacity=2, pod=("usersession-system", "uso-abc"))
    controller = Controller(settings, kube, RedisConnections(no_secret))  # type: ignore[arg-type]
    for i in range(3):
        controller.state.upsert_session({"metadata": {"namespace": "ns", "name": f"s{i}"}})

    async def two_polls() -> None:
        await controller.poll_once()
        await controller.poll_once()

    asyncio.run(two_polls())
    assert [e[1:3] for e in kube.events] == [("Warning", "OverCapacity")]
    assert kube.events[0][0] == "uso-abc"
    assert metrics.REGISTRY.get_sample_value("usersession_known_sessions") == 3
    assert metrics.REGISTRY.get_sample_value("usersession_capacity_sessions") == 2
