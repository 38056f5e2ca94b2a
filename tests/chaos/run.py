"""The chaos run from the command line: the long form, and any other.

    .venv/bin/python tests/chaos/run.py --sessions 1000 --minutes 40 --faults-per-kind 20
    .venv/bin/python tests/chaos/run.py            # the short form CI runs (test_chaos.py)

Prints a line per fault as it is injected, then the table of what was checked,
and writes the figures to tests/benchmarks/results/chaos-<sessions>.json
(--no-save: print only). Exits 1 if any promise failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # support/, as under pytest

from chaos.harness import KEDA, Chaos, Plan
from support.provenance import commit, machine
from usersession_localstack.cluster import LocalCluster

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def main() -> int:
    defaults = Plan()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=defaults.sessions)
    parser.add_argument("--minutes", type=float, default=defaults.minutes)
    parser.add_argument("--faults-per-kind", type=int, default=defaults.faults_per_kind)
    parser.add_argument("--messages-per-second", type=float, default=defaults.messages_per_second)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--no-lag", action="store_true", help="skip the faults-alone timings")
    parser.add_argument("--keep-logs", action="store_true", help="keep every component's log")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    plan = Plan(
        seed=args.seed,
        sessions=args.sessions,
        minutes=args.minutes,
        faults_per_kind=args.faults_per_kind,
        messages_per_second=args.messages_per_second,
        measure_lag=not args.no_lag,
    )
    with LocalCluster(keda_settings=KEDA, keep_workdir=args.keep_logs) as cluster:
        if args.keep_logs:
            print(f"logs: {cluster.workdir / 'logs'}", flush=True)
        report = Chaos(cluster, plan, cluster.workdir / "logs").run()
    print()
    print(report.table())
    failures = report.failures()
    for failure in failures:
        print(f"FAILED: {failure}")
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"chaos-{plan.sessions}.json"
        body = report.as_json() | {
            "commit": commit(),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": machine(),
            "failures": failures,
        }
        path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
        print(f"written to {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
