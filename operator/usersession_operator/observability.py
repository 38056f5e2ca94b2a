"""How a process of this project reports itself, the same for the operator and
the session API: its log format, and the metrics every process exports (its own
resources, and which build it runs).
"""

from __future__ import annotations

import logging
import platform

from prometheus_client import CollectorRegistry, Gauge, ProcessCollector

from usersession_operator import __version__

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str, log_format: str) -> None:
    """Text for people; json (one object per line) for log pipelines."""
    if log_format == "json":
        import kopf  # its JSON formatter; imported late, so the text path never loads kopf

        # "object" carries what a line is about (kind, namespace, name) where the
        # operator's handlers log it.
        kopf.configure(log_format=kopf.LogFormat.JSON, log_refkey="object")
        logging.getLogger().setLevel(level)
        # Python's warnings too, or a pipeline meets a line that is not JSON.
        logging.captureWarnings(True)
        return
    logging.basicConfig(level=level, format=TEXT_FORMAT)


def register_process_metrics(registry: CollectorRegistry, prefix: str) -> None:
    """process_* (resident memory, CPU, open files) and <prefix>_build_info."""
    ProcessCollector(registry=registry)
    build = Gauge(
        f"{prefix}_build_info",
        "Always 1; the labels say which build runs",
        ["version", "python"],
        registry=registry,
    )
    build.labels(__version__, platform.python_version()).set(1)
