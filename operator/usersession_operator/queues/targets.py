"""Where one session's queue lives: server, database, list name and credential references."""

from __future__ import annotations

from dataclasses import dataclass

from usersession_operator.session.model import Session, parse_address
from usersession_operator.session.redisrefs import KeyRef, RedisTls
from usersession_operator.settings import OperatorSettings


@dataclass(frozen=True, slots=True)
class QueueTarget:
    """Where one session's queue lives, and which Secrets hold its credentials."""

    host: str
    port: int
    database: int
    secret_namespace: str
    secret_name: str
    secret_key: str
    queue: str
    username: KeyRef | None = None
    tls: RedisTls | None = None
    # The name the server's certificate is checked against, when not host.
    server_name: str | None = None

    @property
    def queue_key(self) -> bytes:
        """The queue's name as Redis takes it (encoded once per poll, not per command)."""
        return self.queue.encode()

    @property
    def credentials_ref(self) -> tuple[object, ...]:
        """Everything but the list: sessions with the same one share server and credentials."""
        return (
            self.host,
            self.port,
            self.database,
            self.secret_namespace,
            self.secret_name,
            self.secret_key,
            self.username,
            self.tls,
            self.server_name,
        )

    @classmethod
    def of(cls, session: Session, settings: OperatorSettings) -> QueueTarget:
        redis = session.redis
        host, port = redis.host, redis.port
        server_name = redis.tls.server_name if redis.tls else None
        # The operator may reach the default Redis at another address than pods do.
        if settings.redis_operator_address and redis.address == settings.redis.address:
            host, port = parse_address(
                settings.redis_operator_address, "USERSESSION_REDIS_OPERATOR_ADDRESS"
            )
            # The certificate names the server as pods reach it, not the detour.
            server_name = server_name or redis.host
        secret = redis.password_secret
        return cls(
            host,
            port,
            redis.database,
            session.namespace,
            secret.name,
            secret.key,
            session.queue_name,
            username=redis.username_secret,
            tls=redis.tls,
            server_name=server_name,
        )
