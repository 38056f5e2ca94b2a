"""Giving freed memory back to the operating system (glibc's malloc).

Bursts (taking over thousands of sessions after a restart, kopf's backlog of
watch events while statuses are written) free most of what they allocate, yet
the process keeps it: glibc gives each thread that allocates an arena of its
own (up to eight per core), and the API worker threads decode responses in
theirs, so freed memory ends up scattered and resident. Two arenas, and a trim
after each quiet minute, let the resident size follow what is really live.
Elsewhere than glibc (musl, macOS) both do nothing.

And out of the cyclic garbage collector's way: a full collection walks every
tracked object, and with thousands of sessions' state that held the event loop
for hundreds of milliseconds. Long-lived objects are frozen (gc.freeze) once the
takeover is done, and again every few minutes after a collection of the young
ones, so a collection only walks what is new. Plain data has no reference
cycles; refcounting frees a frozen object that is dropped.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
from collections.abc import Awaitable

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # mallopt's parameter, from glibc's malloc.h
ARENAS = 2
TRIM_EVERY_SECONDS = 60.0
FREEZE_EVERY_SECONDS = 600.0


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018  (absent outside glibc)
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas() -> None:
    """As MALLOC_ARENA_MAX=2 would, unless the environment says otherwise. Early:
    threads that already have an arena keep it."""
    libc = _libc()
    if libc is not None and not os.environ.get("MALLOC_ARENA_MAX"):
        libc.mallopt(_M_ARENA_MAX, ARENAS)


def freeze() -> None:
    """Collect the young garbage, then keep everything alive out of future collections."""
    gc.collect()
    gc.freeze()


async def freeze_after(takeover: Awaitable[None]) -> None:
    """Freeze once the takeover's objects exist (every session listed and handled)."""
    await takeover
    freeze()
    log.debug("heap frozen after the takeover: %d objects", gc.get_freeze_count())


async def trim_forever() -> None:
    libc = _libc()
    since_freeze = 0.0
    while True:
        await asyncio.sleep(TRIM_EVERY_SECONDS)
        since_freeze += TRIM_EVERY_SECONDS
        if since_freeze >= FREEZE_EVERY_SECONDS:
            since_freeze = 0.0
            freeze()
        if libc is not None:
            # In a thread: ctypes lets go of the GIL, and a trim of a large heap takes a while.
            await asyncio.to_thread(libc.malloc_trim, 0)
