"""Leader election through a coordination.k8s.io/v1 Lease, with client-go's semantics.

Two replicas run; the one holding the Lease is the operator, the other waits in
kopf's startup handler. kopf starts no watch and runs no handler before its
startup handlers have finished, so a standby lists nothing, polls no Redis and
writes nothing; it serves only its liveness endpoint and its metrics.

The decision (`decide`) is pure and separate from the API calls (`LeaseApi`) and
the loop around them (`Elector`), so the rules can be tested without a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp.web
import kopf
from kubernetes import client
from kubernetes.client import ApiException

from usersession_operator import metrics
from usersession_operator.kube.client import load_api_client
from usersession_operator.settings import OperatorSettings

log = logging.getLogger(__name__)

# client-go's usual timings. A standby takes over once the Lease has not changed
# for LEASE_SECONDS by its own clock; the leader gives up (exits) if it could not
# renew for RENEW_DEADLINE_SECONDS, which leaves it two seconds to be gone before
# anyone else may act.
LEASE_SECONDS = 10
RENEW_EVERY_SECONDS = 2.0
RENEW_DEADLINE_SECONDS = 8.0
# Each API call gets less than a renew period, so a hung one cannot hold the
# single lease thread past the next attempt for long.
_REQUEST_TIMEOUT = (2.0, 3.0)

# The exit status of a replica that lost its Lease; Kubernetes restarts it as a standby.
EXIT_LEADERSHIP_LOST = 3

T = TypeVar("T")


@dataclass(frozen=True)
class Lease:
    """The parts of a Lease the election reads, as the API server returned them."""

    holder: str  # "" once released
    duration_seconds: int
    renew_time: str | None  # compared for equality only: never against our clock
    acquire_time: str | None
    transitions: int
    resource_version: str

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Lease:
        spec = obj.get("spec") or {}
        return cls(
            holder=spec.get("holderIdentity") or "",
            duration_seconds=int(spec.get("leaseDurationSeconds") or LEASE_SECONDS),
            renew_time=spec.get("renewTime"),
            acquire_time=spec.get("acquireTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
            resource_version=str(obj["metadata"]["resourceVersion"]),
        )


class Move(enum.Enum):
    CREATE = "create"  # no Lease yet
    ACQUIRE = "acquire"  # released, or its holder stopped renewing
    RENEW = "renew"  # ours already
    WAIT = "wait"  # someone else holds it and is alive


def decide(lease: Lease | None, me: str, unchanged_for: float) -> Move:
    """What to do given the Lease as read and how long it has looked the same to us.

    Expiry is judged by our own clock since we last saw the Lease change, not by
    comparing its renewTime with our clock: another node's clock may be off by
    more than the lease lasts.
    """
    if lease is None:
        return Move.CREATE
    if lease.holder == me:
        return Move.RENEW
    if not lease.holder or unchanged_for >= lease.duration_seconds:
        return Move.ACQUIRE
    return Move.WAIT


class Observer:
    """How long the Lease has been unchanged, measured on this replica's monotonic clock."""

    def __init__(self) -> None:
        self._seen: tuple[str, str | None, str] | None = None
        self._since = 0.0

    def unchanged_for(self, lease: Lease | None, now: float) -> float:
        # Any write changes the resourceVersion; holder and renewTime say the same
        # for a Lease recreated after a deletion.
        seen = None if lease is None else (lease.holder, lease.renew_time, lease.resource_version)
        if seen != self._seen:
            self._seen, self._since = seen, now
        return now - self._since


def micro_time(moment: dt.datetime) -> str:
    """A MicroTime as the API server parses it: always six fractional digits."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def claimed(lease: Lease | None, me: str, now: dt.datetime) -> dict[str, Any]:
    """The Lease's spec with `me` holding it: renewed if it was ours, else taken over."""
    stamp = micro_time(now)
    if lease is not None and lease.holder == me:
        return {
            "holderIdentity": me,
            "leaseDurationSeconds": LEASE_SECONDS,
            "acquireTime": lease.acquire_time or stamp,
            "renewTime": stamp,
            "leaseTransitions": lease.transitions,
        }
    return {
        "holderIdentity": me,
        "leaseDurationSeconds": LEASE_SECONDS,
        "acquireTime": stamp,
        "renewTime": stamp,
        "leaseTransitions": 0 if lease is None else lease.transitions + 1,
    }


def released(lease: Lease, now: dt.datetime) -> dict[str, Any]:
    """client-go's release: no holder, so a standby takes over at its next look."""
    stamp = micro_time(now)
    return {
        "holderIdentity": None,
        "leaseDurationSeconds": 1,
        "acquireTime": stamp,
        "renewTime": stamp,
        "leaseTransitions": lease.transitions,
    }


def lost(last_renewed: float, now: float) -> bool:
    """The leader must stop: it could not renew for the deadline, so a standby may
    soon (LEASE_SECONDS after its last look) take over."""
    return now - last_renewed > RENEW_DEADLINE_SECONDS


class LeaseApi:
    """One Lease, read and written with the official client (blocking calls)."""

    def __init__(self, api_client: client.ApiClient, namespace: str, name: str) -> None:
        self.api = client.CoordinationV1Api(api_client)
        self.namespace, self.name = namespace, name

    def read(self) -> Lease | None:
        response: Any
        try:
            response = self.api.read_namespaced_lease(
                self.name,
                self.namespace,
                _preload_content=False,
                _request_timeout=_REQUEST_TIMEOUT,
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return Lease.from_object(json.loads(response.data))

    def create(self, spec: Mapping[str, Any]) -> Lease:
        # Plain dicts and raw JSON both ways: the generated model would format
        # MicroTime with isoformat(), which drops the microseconds when they are 0.
        body: Any = {"metadata": {"name": self.name}, "spec": dict(spec)}
        response: Any = self.api.create_namespaced_lease(
            self.namespace, body, _preload_content=False, _request_timeout=_REQUEST_TIMEOUT
        )
        return Lease.from_object(json.loads(response.data))

    def replace(self, lease: Lease, spec: Mapping[str, Any]) -> Lease:
        """Write `spec` over the Lease as read: a 409 if anyone wrote it since."""
        body: Any = {
            "metadata": {"name": self.name, "resourceVersion": lease.resource_version},
            "spec": dict(spec),
        }
        response: Any = self.api.replace_namespaced_lease(
            self.name,
            self.namespace,
            body,
            _preload_content=False,
            _request_timeout=_REQUEST_TIMEOUT,
        )
        return Lease.from_object(json.loads(response.data))


class Elector:
    def __init__(
        self,
        api: LeaseApi,
        identity: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api, self.identity, self.clock = api, identity, clock
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

    async def try_once(self) -> bool:
        """One look at the Lease, taking or renewing it when the rules allow; True if ours."""
        lease = await self._call(self.api.read)
        self.lease = lease
        move = decide(lease, self.identity, self._observer.unchanged_for(lease, self.clock()))
        if move is Move.WAIT:
            return False
        spec = claimed(lease, self.identity, dt.datetime.now(dt.UTC))
        try:
            if lease is None:
                written = await self._call(self.api.create, spec)
            else:
                written = await self._call(self.api.replace, lease, spec)
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
                log.warning("Cannot read or take the lease %s: %s", self.where, _brief(exc))
            holder = self.lease.holder if self.lease else ""
            if holder and holder != waiting_for:
                log.info(
                    "Standby: waiting for the lease %s held by %s (it expires %ss after its "
                    "holder stops renewing it)",
                    self.where,
                    holder,
                    self.lease.duration_seconds if self.lease else LEASE_SECONDS,
                )
                waiting_for = holder
            await asyncio.sleep(RENEW_EVERY_SECONDS)

    async def _renew(self) -> bool:
        """Renew with the Lease we last wrote (one call); on a conflict, read who has it."""
        assert self.lease is not None
        spec = claimed(self.lease, self.identity, dt.datetime.now(dt.UTC))
        try:
            self.lease = await self._call(self.api.replace, self.lease, spec)
        except ApiException as exc:
            if exc.status not in (409, 404):
                raise
            return await self.try_once()
        self.last_renewed = self.clock()
        return True

    async def keep(self) -> str:
        """Renew every period while leading; return why leadership ended."""
        while True:
            await asyncio.sleep(RENEW_EVERY_SECONDS)
            assert self.last_renewed is not None
            remaining = self.last_renewed + RENEW_DEADLINE_SECONDS - self.clock()
            try:
                # Bounded by the deadline, so a hung API server cannot keep us
                # acting past it.
                await asyncio.wait_for(self._renew(), timeout=max(remaining, 0.1))
            except Exception as exc:  # retried until the deadline decides
                log.warning("Cannot renew the lease %s: %s", self.where, _brief(exc))
            if self.lease is not None and self.lease.holder not in ("", self.identity):
                return f"{self.lease.holder} holds it now"
            if lost(self.last_renewed, self.clock()):
                return f"not renewed for {RENEW_DEADLINE_SECONDS:g} s"

    async def release(self) -> None:
        """Give the Lease up so that a standby takes over now, not after it expires."""
        lease = self.lease
        if lease is None or lease.holder != self.identity:
            return
        try:
            try:
                await self._call(self.api.replace, lease, released(lease, dt.datetime.now(dt.UTC)))
            except ApiException as exc:
                # A renewal whose answer was lost (a timeout) moved the resourceVersion on.
                current = await self._call(self.api.read) if exc.status == 409 else None
                if current is None or current.holder != self.identity:
                    raise
                await self._call(
                    self.api.replace, current, released(current, dt.datetime.now(dt.UTC))
                )
        except Exception as exc:  # the standby then waits for expiry
            log.warning("Cannot release the lease %s: %s", self.where, _brief(exc))
        else:
            log.info("Released the lease %s", self.where)
        self.lease = None
        self._executor.shutdown(wait=False)


def _brief(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"{exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# -- wiring into the operator's startup and cleanup -------------------------------------


async def lead(config: OperatorSettings, memo: kopf.Memo) -> None:
    """Return once this replica may act: at once without leader election, else when
    it holds the Lease; from then on keep it, and exit the process if it is lost."""
    election = config.leader_election
    if not election.enabled or memo.get("elector") is not None:
        # (kopf reruns the startup handler after a temporary error: already leading.)
        metrics.LEADER.set(1)
        return
    api_client = await asyncio.to_thread(load_api_client)
    lease = LeaseApi(api_client, election.namespace, election.lease_name)
    elector = Elector(lease, election.identity)
    log.info("Leader election: lease %s as %s", elector.where, election.identity)
    async with _standby_health(config):
        await elector.acquire()
    metrics.LEADER.set(1)
    memo["elector"] = elector
    memo["lease_keeper"] = asyncio.create_task(_keep_or_exit(elector), name="lease keeper")


async def _keep_or_exit(elector: Elector) -> None:
    reason = await elector.keep()
    metrics.LEADER.set(0)
    log.error(
        "Lost the lease %s (%s): exiting at once, to come back as a standby",
        elector.where,
        reason,
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    # Not kopf's graceful stop: that lets running handlers finish their writes,
    # while another replica may already be leading. client-go's controllers exit too.
    os._exit(EXIT_LEADERSHIP_LOST)


async def step_down(memo: kopf.Memo) -> None:
    """On a graceful stop, after the last write: release the Lease for a quick takeover."""
    keeper = memo.get("lease_keeper")
    if keeper is not None:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
    elector: Elector | None = memo.get("elector")
    if elector is not None:
        await elector.release()
        metrics.LEADER.set(0)


@contextlib.asynccontextmanager
async def _standby_health(config: OperatorSettings) -> AsyncIterator[None]:
    """Answer the liveness probe while waiting: kopf serves its /healthz only once the
    startup handlers are done, and a standby that failed its probe would be killed.

    Same host, port and path as kopf's endpoint (cli.py), released before kopf binds it.
    """

    async def healthy(_: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.json_response({"standby": True})

    app = aiohttp.web.Application()
    app.add_routes([aiohttp.web.get("/healthz", healthy)])
    runner = aiohttp.web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        await aiohttp.web.TCPSite(runner, config.listen_host, config.liveness_port).start()
    except OSError as exc:
        await runner.cleanup()
        raise kopf.PermanentError(
            f"cannot serve the standby's liveness endpoint on {config.listen_host}:"
            f"{config.liveness_port} ({exc.strerror or exc}): free the port or choose another "
            "with USERSESSION_LIVENESS_PORT or --liveness-port"
        ) from exc
    try:
        yield
    finally:
        await runner.cleanup()
