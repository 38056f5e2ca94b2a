"""What every endpoint needs, built once per app and stored on it."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from usersession_operator.model import parse_address
from usersession_operator.queues import QueueTarget
from usersession_operator.settings import OperatorSettings

from .auth import Authenticator, Principal
from .cache import SessionCache
from .metrics import ApiMetrics
from .queues import SessionQueues
from .settings import ApiSettings
from .store import SessionStore


@dataclass
class Context:
    settings: ApiSettings
    operator_view: OperatorSettings
    auth: Authenticator
    cache: SessionCache
    store: SessionStore
    queues: SessionQueues
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
