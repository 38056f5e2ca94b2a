"""How long to wait before trying again: doubling from a first delay up to a
ceiling, each wait spread by +/- a fifth at random.

The spread is the point. One Redis or API server outage fails thousands of
sessions (or every watch of every replica) at the same moment; without it they
would all retry at the same moments too, and meet a recovering server as one
burst each time.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

JITTER = 0.2


@dataclass(frozen=True)
class Backoff:
    first: float
    ceiling: float

    def base(self, failures: int) -> float:
        """The wait after `failures` failures in a row (1 or more), before the spread."""
        return min(self.ceiling, self.first * 2.0 ** max(failures - 1, 0))

    def delay(self, failures: int, uniform: Callable[[], float] = random.random) -> float:
        return self.base(failures) * (1.0 - JITTER + 2.0 * JITTER * uniform())
