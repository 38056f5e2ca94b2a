"""A log handler that keeps every line, for the tests that prove no secret reaches a log
(the operator_log fixture of tests/integration/conftest.py)."""

from __future__ import annotations

import logging


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
