"""Leadership wired into the operator's start and stop: a standby waits inside kopf's
startup handler, where kopf has started no watch yet, so it lists nothing, polls no
Redis and writes nothing; it serves only its liveness endpoint and its metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator

import aiohttp.web
import kopf

from usersession_operator import metrics
from usersession_operator.kube.client import load_api_client
from usersession_operator.kube.leases import LeaseApi
from usersession_operator.leadership.elector import Elector
from usersession_operator.settings import OperatorSettings

log = logging.getLogger(__name__)

# The exit status of a replica that lost its Lease; Kubernetes restarts it as a standby.
EXIT_LEADERSHIP_LOST = 3


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
    elector = Elector(
        lease,
        election.identity,
        lease_seconds=election.lease_seconds,
        renew_every_seconds=election.renew_every_seconds,
        renew_deadline_seconds=election.renew_deadline_seconds,
    )
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
