"""A real Prometheus (Debian's package) as a child process of the tests.

Not the system service: its own config, data directory and a free loopback
port under the test's temporary directory, supervised like the local stack's
components (usersession_localstack.process.Component) and stopped on exit.
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
import yaml

from usersession_localstack.loopback import free_port
from usersession_localstack.process import Component

BINARY = shutil.which("prometheus")
MISSING = "prometheus is not installed: hack/setup.sh installs Debian's prometheus package"


class Prometheus:
    def __init__(self, workdir: Path, targets: dict[str, str], rule_files: list[Path]) -> None:
        """targets: job name -> host:port, scraped every second; rules evaluated every second."""
        if BINARY is None:
            raise RuntimeError(MISSING)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {
                        "scrape_interval": "1s",
                        "scrape_timeout": "1s",
                        "evaluation_interval": "1s",
                    },
                    "rule_files": [str(p) for p in rule_files],
                    "scrape_configs": [
                        {"job_name": job, "static_configs": [{"targets": [address]}]}
                        for job, address in targets.items()
                    ],
                }
            )
        )
        self._component = Component(
            "prometheus",
            [
                BINARY,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            workdir,
        )

    def __enter__(self) -> Prometheus:
        self._component.start()
        try:
            self._component.wait_until(
                lambda: requests.get(f"{self.base}/-/ready", timeout=2).ok, 30, "ready"
            )
        except BaseException:
            self._component.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._component.stop()

    def _get(self, path: str, **params: Any) -> Any:
        response = requests.get(f"{self.base}{path}", params=params, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"Prometheus refused {path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector now (an empty list: no data)."""
        result: list[dict[str, Any]] = self._get("/api/v1/query", query=expr)["result"]
        return result

    def query_range(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        data = self._get("/api/v1/query_range", query=expr, start=start, end=end, step="1s")
        result: list[dict[str, Any]] = data["result"]
        return result

    def rules(self) -> list[dict[str, Any]]:
        return [rule for group in self._get("/api/v1/rules")["groups"] for rule in group["rules"]]

    def targets_up(self) -> dict[str, bool]:
        return {
            t["labels"]["job"]: t["health"] == "up"
            for t in self._get("/api/v1/targets")["activeTargets"]
        }

    def wait_for_data(
        self, expr: str, timeout: float, what: str, finite: bool = False
    ) -> list[dict[str, Any]]:
        """Poll an instant query until it returns a series (with finite=True: a number,
        not the NaN a quantile of no observations gives), for at most timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result and (not finite or any(math.isfinite(float(s["value"][1])) for s in result)):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: no data after {timeout:.0f}s for {expr}: {result}")
            time.sleep(0.5)

    def wait_alert(self, name: str, timeout: float = 30) -> None:
        """Until the real rule engine has the alert pending or firing: its expression held."""
        self.wait_for_data(f'ALERTS{{alertname="{name}"}}', timeout, f"alert {name}")


def finite_values(series: list[dict[str, Any]]) -> list[float]:
    """All finite sample values of a range query's result (NaN is what an empty rate gives)."""
    values = (float(v) for s in series for _, v in s.get("values", []))
    return [v for v in values if math.isfinite(v)]
