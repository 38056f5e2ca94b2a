"""The chaos run's short form, as CI runs it: seeded, a few minutes, every fault kind.

Its promises (docs/reliability.md) are asserted: nothing lost, nothing left in a
queue, no orphan, no session stuck in deletion, every status converged, no
Ready=True on a session that could not wake. Its timings are printed, never
asserted; the long form is tests/chaos/run.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.harness import KEDA, Chaos, Plan
from usersession_localstack.cluster import LocalCluster

SHORT = Plan(
    seed=7, sessions=300, minutes=3.0, faults_per_kind=1, messages_per_second=2.0, measure_lag=False
)


@pytest.mark.timeout(1800)
def test_nothing_is_lost_under_a_mix_of_faults(tmp_path: Path) -> None:
    with LocalCluster(keda_settings=KEDA) as cluster:
        report = Chaos(cluster, SHORT, tmp_path).run()
    print("\n" + report.table())
    assert report.sent > 0 and report.handled == report.sent, report.failures()
    assert report.failures() == []
    assert all(n >= 1 for n in report.faults.values()), report.faults
