"""Taking, keeping and giving up the Lease, by the rules of lease.py.

The Lease is read and written through kube/leases.py in a thread of the
elector's own, so a busy controller's calls cannot starve the renewals.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from usersession_operator.backoff import Backoff
from usersession_operator.kube.client import ApiException, describe
from usersession_operator.leadership.lease import (
    LEASE_SECONDS,
    RENEW_DEADLINE_SECONDS,
    RENEW_EVERY_SECONDS,
    Lease,
    Move,
    Observer,
    claimed,
    decide,
    lost,
    released,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


class LeaseStore(Protocol):
    """One Lease as JSON (kube/leases.py's LeaseApi): blocking calls, 409 on a stale write."""

    namespace: str
    name: str

    def read(self) -> dict[str, Any] | None: ...

    def create(self, spec: Mapping[str, Any]) -> dict[str, Any]: ...

    def replace(self, resource_version: str, spec: Mapping[str, Any]) -> dict[str, Any]: ...


class Elector:
    def __init__(
        self,
        api: LeaseStore,
        identity: str,
        clock: Callable[[], float] = time.monotonic,
        lease_seconds: int = LEASE_SECONDS,
        renew_every_seconds: float = RENEW_EVERY_SECONDS,
        renew_deadline_seconds: float = RENEW_DEADLINE_SECONDS,
    ) -> None:
        self.api, self.identity, self.clock = api, identity, clock
        self.lease_seconds = lease_seconds
        self.renew_every = renew_every_seconds
        self.renew_deadline = renew_deadline_seconds
        # A standby's next look, spread like client-go's (JitterUntil): standbys
        # of one release, or of many sharing an API server, do not call in step.
        self._look_again = Backoff(first=renew_every_seconds, ceiling=renew_every_seconds)
        self.lease: Lease | None = None  # the last one read or written
        self.last_renewed: float | None = None  # clock() of our last successful write
        self._observer = Observer()
        # Its own thread: behind a busy controller's calls in the shared pool, a
        # renewal could wait past the deadline and cost a healthy leader its Lease.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lease")

    @property
    def where(self) -> str:
        return f"{self.api.namespace}/{self.api.name}"

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _read(self) -> Lease | None:
        obj = await self._call(self.api.read)
        return None if obj is None else Lease.from_object(obj)

    async def _create(self, spec: Mapping[str, Any]) -> Lease:
        return Lease.from_object(await self._call(self.api.create, spec))

    async def _replace(self, lease: Lease, spec: Mapping[str, Any]) -> Lease:
        return Lease.from_object(await self._call(self.api.replace, lease.resource_version, spec))

    async def try_once(self) -> bool:
        """One look at the Lease, taking or renewing it when the rules allow; True if ours."""
        lease = await self._read()
        self.lease = lease
        move = decide(lease, self.identity, self._observer.unchanged_for(lease, self.clock()))
        if move is Move.WAIT:
            return False
        spec = claimed(lease, self.identity, dt.datetime.now(dt.UTC), self.lease_seconds)
        try:
            if lease is None:
                written = await self._create(spec)
            else:
                written = await self._replace(lease, spec)
        except ApiException as exc:
            if exc.status in (409, 404):  # another replica wrote first: look again later
                return False
            raise
        self.lease, self.last_renewed = written, self.clock()
        return True

    async def acquire(self) -> None:
        """Return once this replica holds the Lease; says whom it waits for."""
        waiting_for: str | None = None
        while True:
            try:
                if await self.try_once():
                    log.info("Leading: holding the lease %s as %s", self.where, self.identity)
                    return
            except Exception as exc:  # whatever failed, look again next period
                log.warning("Cannot read or take the lease %s: %s", self.where, describe(exc))
            holder = self.lease.holder if self.lease else ""
            if holder and holder != waiting_for:
                log.info(
                    "Standby: waiting for the lease %s held by %s (it expires %ss after its "
                    "holder stops renewing it)",
                    self.where,
                    holder,
                    self.lease.duration_seconds if self.lease else self.lease_seconds,
                )
                waiting_for = holder
            await asyncio.sleep(self._look_again.delay(1))

    async def renew(self) -> bool:
        """Renew with the Lease we last wrote (one call); on a conflict, read who has it."""
        assert self.lease is not None
        spec = claimed(self.lease, self.identity, dt.datetime.now(dt.UTC), self.lease_seconds)
        try:
            self.lease = await self._replace(self.lease, spec)
        except ApiException as exc:
            if exc.status not in (409, 404):
                raise
            return await self.try_once()
        self.last_renewed = self.clock()
        return True

    async def keep(self) -> str:
        """Renew every period while leading; return why leadership ended."""
        while True:
            await asyncio.sleep(self.renew_every)
            assert self.last_renewed is not None
            remaining = self.last_renewed + self.renew_deadline - self.clock()
            try:
                # Bounded by the deadline, so a hung API server cannot keep us
                # acting past it.
                await asyncio.wait_for(self.renew(), timeout=max(remaining, 0.1))
            except Exception as exc:  # retried until the deadline decides
                log.warning("Cannot renew the lease %s: %s", self.where, describe(exc))
            if self.lease is not None and self.lease.holder not in ("", self.identity):
                return f"{self.lease.holder} holds it now"
            if lost(self.last_renewed, self.clock(), self.renew_deadline):
                return f"not renewed for {self.renew_deadline:g} s"

    async def release(self) -> None:
        """Give the Lease up so that a standby takes over now, not after it expires."""
        lease = self.lease
        if lease is None or lease.holder != self.identity:
            return
        try:
            try:
                await self._replace(lease, released(lease, dt.datetime.now(dt.UTC)))
            except ApiException as exc:
                # A renewal whose answer was lost (a timeout) moved the resourceVersion on.
                current = await self._read() if exc.status == 409 else None
                if current is None or current.holder != self.identity:
                    raise
                await self._replace(current, released(current, dt.datetime.now(dt.UTC)))
        except Exception as exc:  # the standby then waits for expiry
            log.warning("Cannot release the lease %s: %s", self.where, describe(exc))
        else:
            log.info("Released the lease %s", self.where)
        self.lease = None
        self._executor.shutdown(wait=False)
