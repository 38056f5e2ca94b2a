"""How long the event loop is held up: everything the operator does shares one loop.

A sleeper asks to wake every INTERVAL; how late it wakes is how long something
else held the loop (a poll over thousands of sessions, a burst of watch events).
"""

from __future__ import annotations

import asyncio
import time

from usersession_operator import metrics

INTERVAL = 0.1


async def measure_forever() -> None:
    while True:
        asked = time.monotonic()
        await asyncio.sleep(INTERVAL)
        metrics.EVENT_LOOP_LAG.observe(max(0.0, time.monotonic() - asked - INTERVAL))
