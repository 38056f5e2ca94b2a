"""The capacity benchmark's small form, as CI runs it: 300 sessions with KEDA running,
two operator replicas, one SIGKILL failover. Its figures are printed, not asserted
(timings on a shared two-core machine vary from run to run): what fails the test is
the benchmark not getting through, a takeover that never finishes, say.
bench_capacity.py at 1,000 and 3,000 sessions writes the committed results."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_scale, beside it

import bench_capacity


@pytest.mark.timeout(1500)
def test_three_hundred_sessions_with_keda_and_a_failover() -> None:
    args = bench_capacity.arguments(["--quick"])
    result = bench_capacity.run_one(args, 300)
    print("\n" + json.dumps(result["figures"], indent=2, sort_keys=True))
    figures = result["figures"]
    for measured in (
        "converge_seconds",
        "keda_ready_seconds",
        "operator_rss_mib",
        "wake_push_replica_p95_s",
        "failover_status_current_s",
        "takeover_peak_mib",
        "wake_redis_trigger_replica_p95_s",
    ):
        assert measured in figures, f"the benchmark did not measure {measured}"
    assert figures["hpas"] >= 300
