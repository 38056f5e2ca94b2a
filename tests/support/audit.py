"""Counting API writes by client, from the local API server's audit log (LocalCluster(audit=True)).

apiserver_request_total cannot tell the operator's writes from KEDA's or the
controller-manager's; the audit log names each request's user agent.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from usersession_localstack.cluster import LocalCluster

# The operator's own client (kopf's writes nothing for sessions since it handles none).
OPERATOR_AGENTS = ("usersession-operator", "kopf/")


def offset(cluster: LocalCluster) -> int:
    """Where the log ends now: count the writes after this point."""
    return cluster.audit_log.stat().st_size if cluster.audit_log.exists() else 0


def writes(
    cluster: LocalCluster,
    since: int,
    namespace: str | None = None,
    agents: tuple[str, ...] = OPERATOR_AGENTS,
) -> list[dict[str, Any]]:
    """Write requests that got an answer since `since`, by these user agents."""
    with cluster.audit_log.open("rb") as log:
        log.seek(since)
        lines = log.read().splitlines()
    found = []
    for line in lines:
        entry = json.loads(line)
        ref = entry.get("objectRef") or {}
        if entry.get("stage") != "ResponseComplete":
            continue
        if not str(entry.get("userAgent", "")).startswith(agents):
            continue
        if namespace is not None and ref.get("namespace") != namespace:
            continue
        found.append(entry)
    return found


def by_resource(entries: list[dict[str, Any]]) -> Counter[str]:
    """resource[/subresource] -> number of writes."""
    counts: Counter[str] = Counter()
    for entry in entries:
        ref = entry.get("objectRef") or {}
        sub = f"/{ref['subresource']}" if ref.get("subresource") else ""
        counts[f"{ref.get('resource')}{sub}"] += 1
    return counts
