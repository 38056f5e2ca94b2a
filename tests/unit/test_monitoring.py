"""The chart's alert rules and dashboard: promtool, conventions, and what they cover.

A real Prometheus evaluates both against the real components in
tests/integration/test_monitoring.py; these checks need only promtool.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from support.monitoring import (
    ALERTS,
    GRAFANA_VARIABLES,
    PROMTOOL_TESTS,
    REPO,
    alerts,
    dashboard,
    panel_queries,
    signal,
    variables_used,
)

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed: hack/setup.sh installs Debian's prometheus package",
)


def promtool(*args: str, cwd: Path = REPO) -> str:
    assert PROMTOOL is not None
    result = subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    out = promtool("check", "rules", str(ALERTS))
    assert f"SUCCESS: {len(alerts())} rules found" in out


@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    assert "SUCCESS" in promtool("test", "rules", str(PROMTOOL_TESTS))


def test_every_alert_is_tested_firing_and_silent() -> None:
    cases = [
        case
        for test in yaml.safe_load(PROMTOOL_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
    ]
    for name in alerts():
        mine = [c for c in cases if c["alertname"] == name]
        assert any(c["exp_alerts"] for c in mine), f"{name} is never tested firing"
        assert any(not c["exp_alerts"] for c in mine), f"{name} is never tested silent"


# Labels the alerts may keep: which installation, never which session or user.
ALLOWED_GROUPING = {"namespace", "job", "le"}


def test_alerts_follow_kube_prometheus_conventions() -> None:
    runbooks = (REPO / "docs" / "runbooks.md").read_text()
    headings = {
        re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", runbooks, re.MULTILINE)
    }
    for name, rule in alerts().items():
        assert re.fullmatch(r"UserSession[A-Z][A-Za-z]+", name)
        assert rule["labels"] == {"severity": rule["labels"]["severity"]}, name
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}, name
        url, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert url.endswith("/docs/runbooks.md") and anchor == name.lower(), name
        assert anchor in headings, f"docs/runbooks.md has no runbook section for {name}"
        for grouping in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", rule["expr"]):
            kept = {label.strip() for label in grouping.split(",") if label.strip()}
            assert kept <= ALLOWED_GROUPING, (name, kept)


def test_signals_of_threshold_alerts_are_what_they_measure() -> None:
    # The integration test evaluates these when the scenario cannot reach the threshold.
    assert signal(alerts()["UserSessionWakeSlow"]["expr"]).startswith("histogram_quantile(0.9,")
    assert signal("rate(x[5m]) == 0") == "rate(x[5m])"
    with pytest.raises(ValueError):
        signal("absent(up == 1)")


def test_dashboard_is_a_grafana_dashboard_with_data_source_and_job_variables() -> None:
    board = dashboard()
    assert board["uid"] == "usersession-operator" and board["title"]
    assert board["schemaVersion"] >= 36
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    defined = {v["name"] for v in board["templating"]["list"]}
    assert {"datasource", "operator_job", "api_job"} <= defined
    for panel in board["panels"]:
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in [panel, *panel["targets"]]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    for query in panel_queries():
        unknown = variables_used(query.expr) - defined - set(GRAFANA_VARIABLES)
        assert not unknown, (query.panel, unknown)


def test_dashboard_shows_what_the_issue_asks_for() -> None:
    exprs = " ".join(q.expr for q in panel_queries())
    for metric in (
        "usersession_sessions",
        "usersession_queue_depth",
        "usersession_wake_duration_seconds_bucket",
        "usersession_reconcile_total",
        "usersession_status_patches_total",
        "usersession_redis_poll_duration_seconds_bucket",
        "usersession_redis_poll_errors_total",
        "sessionapi_requests_total",
        "sessionapi_request_duration_seconds_bucket",
    ):
        assert metric in exprs, f"no panel shows {metric}"


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses PromQL only inside rules: each query becomes a recording rule.
    rules = [
        {"record": f"dashboard:query:{i}", "expr": q.promql()}
        for i, q in enumerate(panel_queries())
    ]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in promtool("check", "rules", str(path))
