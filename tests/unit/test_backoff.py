from __future__ import annotations

import pytest

from usersession_operator.backoff import Backoff

RETRY = Backoff(first=1.0, ceiling=30.0)


def test_doubles_from_the_first_wait_to_the_ceiling() -> None:
    assert [RETRY.base(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_each_wait_is_spread_by_a_fifth_either_way() -> None:
    assert RETRY.delay(3, uniform=lambda: 0.0) == pytest.approx(3.2)
    assert RETRY.delay(3, uniform=lambda: 1.0) == pytest.approx(4.8)
    # Sessions failing together do not retry together.
    assert len({round(RETRY.delay(3), 6) for _ in range(50)}) > 40
