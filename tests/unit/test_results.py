"""The measured figures in the docs are the ones in the results files, and the chart's
defaults hold what was measured for the capacity they state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from benchmarks import report

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "charts" / "usersession-operator" / "values.yaml"
MIB = {"Mi": 1, "Gi": 1024}


@pytest.mark.parametrize("page", report.PAGES, ids=lambda p: p.name)
def test_every_measured_table_is_what_its_results_files_say(page: Path) -> None:
    text = page.read_text()
    assert report.render(text, page) == text, (
        f"{page.relative_to(ROOT)} disagrees with tests/benchmarks/results/: "
        "run .venv/bin/python tests/benchmarks/report.py"
    )


@pytest.mark.parametrize("path", sorted(report.RESULTS.glob("*.json")), ids=lambda p: p.name)
def test_every_results_file_says_when_where_and_at_which_commit(path: Path) -> None:
    result = json.loads(path.read_text())
    assert result.get("date") and result.get("figures"), path.name
    if path.name.startswith("capacity-"):
        assert result["commit"] and result["machine"]["cpus"], path.name


def _mib(quantity: str) -> float:
    number, unit = quantity[:-2], quantity[-2:]
    return float(number) * MIB[unit]


def test_the_charts_memory_limit_holds_a_takeover_at_its_stated_capacity() -> None:
    values = yaml.safe_load(VALUES.read_text())
    capacity = values["capacity"]
    limit = _mib(values["resources"]["limits"]["memory"])
    measured = [
        r for _, r in report.load("capacity-*.json") if r["sessions"] >= capacity and r["keda"]
    ]
    assert measured, f"no measurement with KEDA at {capacity} sessions or more"
    peak = min(measured, key=lambda r: r["sessions"])["figures"]["takeover_peak_mib"]
    assert limit >= peak, f"limit {limit} MiB is below the measured takeover peak {peak} MiB"
    assert limit >= report.memory_limit_mib(peak), "less headroom than the Sizing table gives"


def test_the_limit_rule_keeps_headroom_and_round_numbers() -> None:
    assert report.memory_limit_mib(100) == 128
    assert report.memory_limit_mib(400) == 512
    assert report.memory_limit_mib(410) % report.LIMIT_STEP_MIB == 0
