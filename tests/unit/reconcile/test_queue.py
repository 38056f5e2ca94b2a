"""The work queue: one worker per key at a time, nothing lost or doubled, retries on timers."""

from __future__ import annotations

import asyncio

from usersession_operator.reconcile.queue import WorkQueue
from usersession_operator.state import Key

A, B = ("ns", "a"), ("ns", "b")


def test_a_key_added_twice_while_waiting_is_handled_once() -> None:
    async def main() -> list[Key]:
        seen: list[Key] = []

        async def handle(key: Key) -> None:
            seen.append(key)

        queue = WorkQueue(handle, workers=2)
        for key in (A, A, B, A):
            queue.add(key)
        queue.start()
        await queue.settle()
        await queue.close()
        return seen

    assert sorted(asyncio.run(main())) == [A, B]


def test_a_key_added_while_handled_is_handled_again_after_never_beside() -> None:
    async def main() -> tuple[int, int]:
        calls, running, most = 0, 0, 0
        release = asyncio.Event()

        async def handle(key: Key) -> None:
            nonlocal calls, running, most
            calls += 1
            running += 1
            most = max(most, running)
            await release.wait()
            running -= 1

        queue = WorkQueue(handle, workers=4)
        queue.start()
        queue.add(A)
        await asyncio.sleep(0.01)
        queue.add(A)  # an event arrives while A is being handled
        queue.add(A)
        release.set()
        await queue.settle()
        await queue.close()
        return calls, most

    assert asyncio.run(main()) == (2, 1)


def test_workers_bound_how_many_keys_are_handled_at_once() -> None:
    async def main() -> int:
        running, most = 0, 0

        async def handle(key: Key) -> None:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.01)
            running -= 1

        queue = WorkQueue(handle, workers=3)
        for i in range(30):
            queue.add(("ns", f"s{i}"))
        queue.start()
        await queue.settle()
        await queue.close()
        return most

    assert asyncio.run(main()) == 3


def test_a_retry_waits_for_its_delay_and_an_event_brings_it_forward() -> None:
    async def main() -> list[float]:
        times: list[float] = []
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def handle(key: Key) -> float | None:
            times.append(round(loop.time() - start, 1))
            return 0.3 if len(times) == 1 else None

        queue = WorkQueue(handle, workers=1)
        queue.start()
        queue.add(A)
        await asyncio.sleep(0.5)  # the retry after 0.3 s
        queue.add(A, delay=5)  # a later request does not postpone nor double...
        queue.add(A)  # ...and an event now handles it at once
        await asyncio.sleep(0.1)
        await queue.close()
        return times

    assert asyncio.run(main()) == [0.0, 0.3, 0.5]


def test_a_failing_handler_is_retried_with_backoff_and_the_others_go_on() -> None:
    async def main() -> list[Key]:
        seen: list[Key] = []

        async def handle(key: Key) -> None:
            seen.append(key)
            if key == A:
                raise RuntimeError("a bug")

        queue = WorkQueue(handle, workers=1)
        queue.add(A)
        queue.add(B)
        queue.start()
        await asyncio.sleep(1.2)  # A again after 1 s
        queue.forget(A)
        await queue.close()
        return seen

    assert asyncio.run(main()) == [A, B, A]
