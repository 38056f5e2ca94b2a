"""The measured tables of README.md and docs/, made from the results files, never by hand.

    .venv/bin/python tests/benchmarks/report.py          # rewrite the tables in place
    .venv/bin/python tests/benchmarks/report.py --check  # exit 1 if a table is stale

Each table sits between two markers in its page:
    <!-- results: NAME -->
    ...
    <!-- /results -->
and is rendered from tests/benchmarks/results/*.json by the function of that NAME
below, with a line naming the files it comes from. tests/unit/test_results.py
runs the check, so a results file and the docs never disagree.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"
PAGES = (ROOT / "README.md", ROOT / "docs" / "operations.md", ROOT / "docs" / "reliability.md")
MARKER = re.compile(r"(<!-- results: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /results -->)", re.S)
# Headroom over the measured takeover peak for a memory limit, and the unit it is rounded up to.
LIMIT_HEADROOM = 1.25
LIMIT_STEP_MIB = 64


def load(pattern: str) -> list[tuple[str, dict[str, Any]]]:
    """(file name, contents) of the results files matching pattern, by session count."""
    found = [(p.name, json.loads(p.read_text())) for p in RESULTS.glob(pattern)]
    return sorted(found, key=lambda item: int(item[1].get("sessions") or 0))


def memory_limit_mib(peak_mib: float) -> int:
    """The limit that holds a measured takeover peak, with headroom."""
    return int(math.ceil(peak_mib * LIMIT_HEADROOM / LIMIT_STEP_MIB) * LIMIT_STEP_MIB)


def _source(files: list[str]) -> str:
    named = ", ".join(f"[`{n}`](tests/benchmarks/results/{n})" for n in files)
    return f"From {named}."


def _fig(result: dict[str, Any], name: str, unit: str = "", digits: int = 1) -> str:
    value = result["figures"].get(name)
    if value is None:
        return "-"
    if isinstance(value, float):
        value = round(value, digits)
    return f"{value}{unit}"


def designs() -> list[tuple[str, dict[str, Any]]]:
    """The capacity results of the shipped design (not the side-by-side comparisons)."""
    return [(n, r) for n, r in load("capacity-*.json") if not n.endswith("-two-triggers.json")]


Row = tuple[str, Callable[[dict[str, Any]], str]]


def capacity(page: Path) -> str:
    """Per session count: the whole system with KEDA, and the operator alone past it."""
    rows: list[Row] = [
        ("KEDA", lambda r: "running" if r["keda"] else "stopped"),
        ("converge: all Ready / floor", lambda r: _converge(r)),
        ("operator RSS settled", lambda r: _fig(r, "operator_rss_mib", " MiB", 0)),
        ("takeover (SIGKILL failover): peak / after", lambda r: _takeover(r)),
        ("poll cycle, mean", lambda r: _fig(r, "poll_cycle_mean_ms", " ms")),
        ("event-loop holds over 50 ms / wake-ups", lambda r: _holds(r)),
        ("failover: new leader / status current", lambda r: _failover(r)),
        ("wake, push path: one replica p50 / p95", lambda r: _wake(r, "wake_push_replica")),
        ("wake, push path: pod Running p50 / p95", lambda r: _wake(r, "wake_push_running")),
        (
            "wake, KEDA's redis trigger alone (operator down): one replica p50 / p95",
            lambda r: _wake(r, "wake_redis_trigger_replica"),
        ),
        ("KEDA RSS / CPU idle", lambda r: _component(r, "keda-operator")),
        ("kube-apiserver RSS / CPU idle", lambda r: _component(r, "kube-apiserver")),
        ("etcd RSS / CPU idle", lambda r: _component(r, "etcd")),
        (
            "kube-controller-manager RSS / CPU idle",
            lambda r: _component(r, "kube-controller-manager"),
        ),
        ("HPAs / Redis clients / KEDA's push streams", lambda r: _objects(r)),
        (
            "operator writes idle (60 s, Lease renewals included)",
            lambda r: _fig(r, "idle_operator_writes"),
        ),
    ]
    return _per_count(rows)


def headline(page: Path) -> str:
    """The README's few rows of the capacity table."""
    rows: list[Row] = [
        ("KEDA", lambda r: "running" if r["keda"] else "stopped"),
        ("operator RSS settled / takeover peak", lambda r: _settled_and_peak(r)),
        ("poll cycle, mean", lambda r: _fig(r, "poll_cycle_mean_ms", " ms")),
        ("wake, push path: one replica p50 / p95", lambda r: _wake(r, "wake_push_replica")),
        ("wake, push path: pod Running p50 / p95", lambda r: _wake(r, "wake_push_running")),
        ("failover: new leader / status current", lambda r: _failover(r)),
    ]
    return _per_count(rows)


# Issue 21's goals: (what, figure, unit, the test it must pass).
GOALS: tuple[tuple[str, str, str, Callable[[float], bool]], ...] = (
    ("takeover peak <= 1.5x settled", "takeover_peak_vs_settled", "x", lambda v: v <= 1.5),
    ("poll cycle <= 200 ms", "poll_cycle_mean_ms", " ms", lambda v: v <= 200),
    ("no event-loop hold over 50 ms", "loop_holds_over_50ms", " holds", lambda v: v == 0),
    ("settled RSS <= 250 MiB (the goal at 10,000)", "operator_rss_mib", " MiB", lambda v: v <= 250),
    (
        "takeover peak <= 375 MiB (the goal at 10,000)",
        "takeover_peak_mib",
        " MiB",
        lambda v: v <= 375,
    ),
    (
        "wake to one replica, p95 < 1 s (push path)",
        "wake_push_replica_p95_s",
        " s",
        lambda v: v < 1,
    ),
    (
        "wake to a Running pod, p95 <= 2 s (push path)",
        "wake_push_running_p95_s",
        " s",
        lambda v: v <= 2,
    ),
)


def goals(page: Path) -> str:
    """Each goal against each count: the figure, and whether it is met."""
    rows: list[Row] = []
    for label, name, unit, met in GOALS:

        def cell(r: dict[str, Any], name: str = name, unit: str = unit, met: Any = met) -> str:
            value = r["figures"].get(name)
            if value is None:
                return "-"
            return f"{round(value, 2):g}{unit}, {'met' if met(value) else '**not met**'}"

        rows.append((label, cell))
    return _per_count(rows)


def _per_count(rows: list[Row]) -> str:
    results = designs()
    if not results:
        return "(no results yet)\n"
    counts = [f"{r['sessions']:,} sessions" for _, r in results]
    lines = [f"| | {' | '.join(counts)} |", "|---|" + "---|" * len(results)]
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(r) for _, r in results) + " |")
    commits = sorted({r["commit"] for _, r in results})
    lines += ["", _source([n for n, _ in results]) + f" Commit {', '.join(commits)}."]
    return "\n".join(lines) + "\n"


def _converge(r: dict[str, Any]) -> str:
    f = r["figures"]
    if "converge_seconds" in f:
        ratio = f"{f['converge_vs_floor']:.2f}x"
        return f"{f['converge_seconds']:.0f} s / {f['floor_seconds']:.0f} s ({ratio})"
    if "takeover_seconds" in f:
        written, taken = f["floor_seconds"], f["takeover_seconds"]
        return f"written directly in {written:.0f} s; taken over in {taken:.0f} s"
    return "-"


def _takeover(r: dict[str, Any]) -> str:
    f = r["figures"]
    if "takeover_peak_mib" not in f:
        return "-"
    return (
        f"{f['takeover_peak_mib']:.0f} / {f['after_takeover_settled_mib']:.0f} MiB "
        f"({f['takeover_peak_vs_settled']:.2f}x the RSS after it)"
    )


def _settled_and_peak(r: dict[str, Any]) -> str:
    f = r["figures"]
    peak = f.get("takeover_peak_mib")
    return f"{f['operator_rss_mib']:.0f} / " + ("-" if peak is None else f"{peak:.0f} MiB")


def _holds(r: dict[str, Any]) -> str:
    f = r["figures"]
    return f"{f.get('loop_holds_over_50ms', 0):.0f} / {f.get('loop_wakeups', 0):.0f}"


def _failover(r: dict[str, Any]) -> str:
    f = r["figures"]
    return f"{f['failover_leading_s']:.1f} s / {f['failover_status_current_s']:.1f} s"


def _wake(r: dict[str, Any], prefix: str) -> str:
    f = r["figures"]
    if f"{prefix}_p50_s" not in f:
        return "-"
    return f"{f[prefix + '_p50_s']:.2f} / {f[prefix + '_p95_s']:.2f} s"


def _component(r: dict[str, Any], name: str) -> str:
    f = r["figures"]
    if f"{name}_rss_mib" not in f:
        return "-"
    return f"{f[name + '_rss_mib']:.0f} MiB / {f[name + '_cpu_cores']:.2f} cores"


def _objects(r: dict[str, Any]) -> str:
    f = r["figures"]
    return f"{f.get('hpas', 0)} / {f.get('redis_clients', 0)} / {f.get('push_streams', 0):.0f}"


def keda_load(page: Path) -> str:
    """One redis trigger per session (and the push path) against two, at one count."""
    pairs = []
    for name, before in load("capacity-*-two-triggers.json"):
        now = RESULTS / name.replace("-two-triggers", "")
        if now.exists():
            pairs.append((name, before, now.name, json.loads(now.read_text())))
    if not pairs:
        return "(no results yet)\n"
    lines = [
        "| KEDA running | two redis triggers (previous) | one, in-flight on the push path |",
        "|---|---|---|",
    ]
    rows: list[Row] = [
        ("KEDA RSS / CPU idle", lambda r: _component(r, "keda-operator")),
        ("Redis clients", lambda r: str(r["figures"].get("redis_clients", "-"))),
        ("Redis commands per second, idle", lambda r: _fig(r, "redis_commands_per_s")),
        ("kube-apiserver CPU idle", lambda r: _fig(r, "kube-apiserver_cpu_cores", " cores", 2)),
        ("converge: all Ready", lambda r: _fig(r, "converge_seconds", " s", 0)),
        ("wake, push path: one replica p50", lambda r: _fig(r, "wake_push_replica_p50_s", " s", 2)),
    ]
    for _, before, _, now in pairs:
        lines.append(f"| **{now['sessions']:,}** | | |")
        for label, cell in rows:
            lines.append(f"| {label} | {cell(before)} | {cell(now)} |")
    files = [n for pair in pairs for n in (pair[0], pair[2])]
    lines += ["", _source(files)]
    return "\n".join(lines) + "\n"


def sizing(page: Path) -> str:
    """Sessions -> what to give the operator: requests at the settled RSS, limits over
    the takeover peak, from the same measurements."""
    results = [(n, r) for n, r in designs() if "takeover_peak_mib" in r["figures"]]
    if not results:
        return "(no results yet)\n"
    lines = [
        "| sessions | KEDA | memory request | memory limit | CPU request"
        " | measured: settled / peak |",
        "|---|---|---|---|---|---|",
    ]
    for _, r in results:
        f = r["figures"]
        request = int(math.ceil(f["operator_rss_mib"] / 32) * 32)
        cpu = max(0.1, f.get("operator_cpu_cores", 0.0) * 2)
        lines.append(
            f"| {r['sessions']:,} | {'running' if r['keda'] else 'stopped'} "
            f"| {request}Mi | {memory_limit_mib(f['takeover_peak_mib'])}Mi | "
            f"{int(math.ceil(cpu * 10) * 100)}m | {f['operator_rss_mib']:.0f} / "
            f"{f['takeover_peak_mib']:.0f} MiB |"
        )
    lines += ["", _source([n for n, _ in results])]
    return "\n".join(lines) + "\n"


def chaos(page: Path) -> str:
    results = load("chaos-*.json")
    if not results:
        return "(no results yet)\n"
    lines = ["| | " + " | ".join(f"{r['plan']['sessions']:,} sessions" for _, r in results) + " |"]
    lines.append("|---|" + "---|" * len(results))

    def row(label: str, cell: Callable[[dict[str, Any]], str]) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(r["figures"]) for _, r in results) + " |")

    plans = [r["plan"] for _, r in results]
    lines.append(
        "| minutes of faults, seed | "
        + " | ".join(f"{p['minutes']:g}, {p['seed']}" for p in plans)
        + " |"
    )
    kinds = sorted({k for _, r in results for k in r["figures"]["faults"]})
    for kind in kinds:
        row(f"faults: {kind.replace('_', ' ')}", lambda f, k=kind: str(f["faults"].get(k, 0)))
    row("messages sent / handled", lambda f: f"{f['sent']} / {f['handled']}")
    row("messages lost", lambda f: str(f["lost"]))
    row("handled more than once", lambda f: str(f["duplicates"]))
    row("left queued / in flight", lambda f: f"{f['left_in_queues']} / {f['left_in_flight']}")
    row("orphans (children, HPAs, claims, Redis keys)", lambda f: str(sum(f["orphans"].values())))
    row("sessions stuck in deletion", lambda f: str(f["stuck_deleting"]))
    row("sessions not converged at the end", lambda f: str(f["not_converged"]))
    row("all converged, after the last fault", lambda f: f"{f['converged_after_last_fault_s']} s")
    row("Ready=True on a session that could not wake", lambda f: str(f["false_ready"]))
    row(
        "operator RSS after the run",
        lambda f: ", ".join(f"{v:.0f} MiB" for _, v in sorted(f["operator_rss_mib"].items())),
    )
    lines += ["", _source([n for n, _ in results])]
    return "\n".join(lines) + "\n"


def lag(page: Path) -> str:
    """Per fault, alone: from its end until a message sent then was handled, and
    until every status read the truth again."""
    results = [(n, r) for n, r in load("chaos-*.json") if r["figures"].get("lag_s")]
    if not results:
        return "(no results yet)\n"
    lines = [
        "| fault (alone, after the mix) | "
        + " | ".join(
            f"{r['plan']['sessions']:,} sessions: message handled / status current"
            for _, r in results
        )
        + " |",
        "|---|" + "---|" * len(results),
    ]
    kinds = list(dict.fromkeys(k for _, r in results for k in r["figures"]["lag_s"]))
    for kind in kinds:
        cells = []
        for _, r in results:
            timing = r["figures"]["lag_s"].get(kind) or {}
            cells.append(f"{_secs(timing.get('handled'))} / {_secs(timing.get('status'))}")
        lines.append(f"| {kind.replace('_', ' ')} | " + " | ".join(cells) + " |")
    lines += ["", _source([n for n, _ in results])]
    return "\n".join(lines) + "\n"


def _secs(value: float | None) -> str:
    return "not within 300 s" if value is None else f"{value:.0f} s"


TABLES: dict[str, Callable[[Path], str]] = {
    "capacity": capacity,
    "headline": headline,
    "goals": goals,
    "sizing": sizing,
    "keda-load": keda_load,
    "chaos": chaos,
    "lag": lag,
}


def render(text: str, page: Path) -> str:
    def table(match: re.Match[str]) -> str:
        body = TABLES[match["name"]](page)
        if page.parent != ROOT:  # links from docs/ climb one level
            body = body.replace("](tests/", "](../tests/")
        return f"{match.group(1)}{body}{match.group(4)}"

    return MARKER.sub(table, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    stale = []
    for page in PAGES:
        text = page.read_text()
        rendered = render(text, page)
        if rendered != text:
            stale.append(page)
            if not args.check:
                page.write_text(rendered)
    for page in stale:
        print(f"{'stale' if args.check else 'rewritten'}: {page.relative_to(ROOT)}")
    return 1 if (stale and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
