"""Plots the Grafana dashboard's queries as a real Prometheus answered them in the test.

Run: python tests/benchmarks/plot_dashboard.py [--out docs/dashboard.png] [--series FILE]

No Grafana runs here, so this draws the same queries instead: one chart per
dashboard panel, from the series tests/integration/test_monitoring.py reads back
from its real Prometheus over its scenario (a session made Degraded, one woken,
Redis stopped, then the API and the operator stopped; dashed lines mark them).
Without --series it first runs that test with USERSESSION_DASHBOARD_SERIES set.

matplotlib is not a project dependency (nothing in the suite plots): run this
with any Python that has it, e.g.
  python3 -m venv /tmp/plot && /tmp/plot/bin/pip install matplotlib
  /tmp/plot/bin/python tests/benchmarks/plot_dashboard.py
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display; before pyplot is imported
import matplotlib.pyplot as plt

REPO = Path(__file__).resolve().parents[2]
TEST = "tests/integration/test_monitoring.py"


def run_test(series: Path) -> None:
    env = {**os.environ, "USERSESSION_DASHBOARD_SERIES": str(series)}
    python = REPO / ".venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "pytest", TEST, "-q"], cwd=REPO, env=env, check=True)


def legend(template: str, labels: dict[str, str]) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)
    return text.strip() or ", ".join(f"{k}={v}" for k, v in labels.items()) or "value"


def plot(data: dict[str, Any], out: Path) -> None:
    panels: dict[str, list[dict[str, Any]]] = {}
    for query in data["queries"]:
        panels.setdefault(query["panel"], []).append(query)
    start = data["start"]
    events = sorted(data["events"].items(), key=lambda kv: kv[1])
    columns = 3
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(15, 2.6 * rows), squeeze=False)
    for ax, (title, queries) in zip(axes.flat, panels.items(), strict=False):
        for query in queries:
            for series in query["series"]:
                points = [(t - start, float(v)) for t, v in series["values"]]
                xs = [t for t, v in points if math.isfinite(v)]
                ys = [v for _, v in points if math.isfinite(v)]
                metric = {k: v for k, v in series["metric"].items() if k != "__name__"}
                ax.plot(xs, ys, linewidth=1.2, label=legend(query["legend"], metric))
        for letter, (_, at) in zip("ABCDEFG", events, strict=False):
            ax.axvline(at - start, color="grey", linestyle="--", linewidth=0.7)
            ax.text(at - start, 1.0, letter, transform=ax.get_xaxis_transform(), fontsize=7)
        ax.set_title(title, fontsize=10)
        ax.tick_params(labelsize=7)
        ax.set_xlim(0, data["end"] - start)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="upper left")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    caption = "   ".join(
        f"{letter}: {name} (t={at - start:.0f} s)"
        for letter, (name, at) in zip("ABCDEFG", events, strict=False)
    )
    fig.suptitle(
        "UserSession operator dashboard, its queries on a real Prometheus (x: seconds)\n" + caption,
        fontsize=11,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    print(f"wrote {out}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "dashboard.png")
    parser.add_argument("--series", type=Path, help="a file the test wrote; default: run it")
    args = parser.parse_args()
    if args.series is None:
        with tempfile.TemporaryDirectory() as tmp:
            series = Path(tmp) / "series.json"
            run_test(series)
            data = json.loads(series.read_text())
    else:
        data = json.loads(args.series.read_text())
    plot(data, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
