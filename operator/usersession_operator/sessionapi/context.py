"""What every endpoint needs, built once per app and stored on it."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from usersession_operator.queues.messages import SessionLists
from usersession_operator.queues.targets import QueueTarget
from usersession_operator.session.model import parse_address
from usersession_operator.sessionapi.auth import Authenticator, Principal
from usersession_operator.sessionapi.cache import SessionCache
from usersession_operator.sessionapi.metrics import ApiMetrics
from usersession_operator.sessionapi.settings import ApiSettings
from usersession_operator.sessionapi.store import SessionStore
from usersession_operator.settings import OperatorSettings


@dataclass
class Context:
    settings: ApiSettings
    operator_view: OperatorSettings
    auth: Authenticator
    cache: SessionCache
    store: SessionStore
    queues: SessionLists
    metrics: ApiMetrics

    def default_redis(self) -> QueueTarget:
        """The Redis sessions fall back to, as this process reaches it (for /health)."""
        address = self.settings.redis_api_address or self.settings.redis.address
        host, port = parse_address(address, "the session API's Redis address setting")
        redis = self.settings.redis
        tls = redis.auth.tls
        server_name = tls.server_name if tls else None
        if tls and self.settings.redis_api_address:
            # Checked against the name sessions use, not the detour's.
            server_name = server_name or parse_address(redis.address, "")[0]
        return QueueTarget(
            host,
            port,
            redis.database,
            self.settings.namespace,
            redis.secret_name,
            redis.secret_key,
            queue="",
            username=redis.auth.username,
            tls=tls,
            server_name=server_name,
        )


CONTEXT = web.AppKey("context", Context)
PRINCIPAL = web.RequestKey("principal", Principal)
