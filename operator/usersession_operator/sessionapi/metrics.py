"""Prometheus metrics of the session API, in a registry of its own.

Route labels are route templates (/session/{id}/status), never concrete paths,
and no label carries a user id, session id or token.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from usersession_operator.observability import register_process_metrics


class ApiMetrics:
    def __init__(self) -> None:
        # One registry per app, so test apps in one process do not collide.
        self.registry = CollectorRegistry(auto_describe=True)
        register_process_metrics(self.registry, "sessionapi")
        self.requests = Counter(
            "sessionapi_requests_total",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sessionapi_request_duration_seconds",
            "HTTP request latency by route template and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.wakes = Counter(
            "sessionapi_wakes_total",
            "Wake requests by outcome (queued, already_running)",
            ["outcome"],
            registry=self.registry,
        )
        self.chats = Counter(
            "sessionapi_chats_total",
            "Chat messages by outcome (replied, pending)",
            ["outcome"],
            registry=self.registry,
        )
        # Known outcomes exist from the start at zero, so rate() sees their first
        # increment (a series first scraped at 1 has no earlier sample).
        for outcome in ("queued", "already_running"):
            self.wakes.labels(outcome)
        for outcome in ("replied", "pending"):
            self.chats.labels(outcome)
        self.reply_latency = Histogram(
            "sessionapi_chat_reply_seconds",
            "Time from queueing a chat message to receiving its reply, for replies waited on",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
