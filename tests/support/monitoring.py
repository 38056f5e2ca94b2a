"""The chart's alert rules and dashboard, read from their one source, for the tests."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "charts" / "usersession-operator" / "monitoring"
ALERTS = MONITORING / "alerts.yaml"
DASHBOARD = MONITORING / "dashboard.json"
PROMTOOL_TESTS = REPO / "tests" / "unit" / "monitoring" / "alerts.test.yaml"

# The job names the rule file selects (the chart rewrites them for a release);
# the tests' Prometheus scrapes under exactly these.
OPERATOR_JOB, API_JOB = "usersession-operator", "usersession-api"
# What Grafana would put in for the dashboard's variables. The rate window fits a
# 1 s scrape interval (Grafana's $__rate_interval is at least four of them).
GRAFANA_VARIABLES = {
    "operator_job": OPERATOR_JOB,
    "api_job": API_JOB,
    "__rate_interval": "15s",
}


def alert_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(ALERTS.read_text())["groups"]
    return groups


def alerts() -> dict[str, dict[str, Any]]:
    """Every alerting rule by name."""
    return {rule["alert"]: rule for group in alert_groups() for rule in group["rules"]}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


@dataclass(frozen=True)
class PanelQuery:
    panel: str
    legend: str
    expr: str  # as written in the dashboard, with Grafana's $variables

    def promql(self) -> str:
        """The query as Grafana would send it."""
        return substitute(self.expr, GRAFANA_VARIABLES)


def panel_queries() -> list[PanelQuery]:
    return [
        PanelQuery(panel["title"], target.get("legendFormat", ""), target["expr"])
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


def variables_used(expr: str) -> set[str]:
    return set(re.findall(r"\$\{?(\w+)", expr))


def substitute(expr: str, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return re.sub(r"\$\{?(\w+)\}?", value, expr)


_THRESHOLD = re.compile(r"(?s)(?P<signal>.*\S)\s*(?:==|!=|>=|<=|>|<)\s*[-+0-9.e]+\s*")


def signal(expr: str) -> str:
    """An alert expression without its final threshold comparison: what it measures."""
    match = _THRESHOLD.fullmatch(expr)
    if match is None:
        raise ValueError(f"no trailing threshold in {expr!r}")
    return match.group("signal")
