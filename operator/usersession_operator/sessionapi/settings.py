"""Session API settings: environment variables (SESSIONAPI_*), overridable by flags.

The Redis defaults mean the same as the operator's (USERSESSION_REDIS_*): they
are what a UserSession without spec.redis falls back to. Only the address the
API itself dials may differ, as for the operator.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from usersession_operator.session.redisrefs import RedisDefaults, auth_defaults_from_env
from usersession_operator.settings import OperatorSettings

ENV_PREFIX = "SESSIONAPI_"


@dataclass(frozen=True)
class ApiSettings:
    namespace: str = "default"
    redis: RedisDefaults = field(default_factory=RedisDefaults)
    # Where this process reaches the default Redis, when that differs from the
    # in-cluster address sessions are given (e.g. a port-forward while developing).
    redis_api_address: str | None = None
    # A Secret-mounted file is preferred: it can be rotated without a restart.
    tokens_file: str | None = None
    tokens: str | None = None  # the same mapping, inline (JSON or YAML)
    listen_host: str = "127.0.0.1"
    port: int = 8000
    # How long POST /chat waits for the worker's reply before answering 202.
    reply_wait_seconds: float = 10.0
    max_reply_wait_seconds: float = 60.0
    # How long a reply (and the marker of a message still awaiting one) is kept.
    reply_ttl_seconds: int = 3600
    default_image: str | None = None
    # Image prefixes a user token may pick on create; admins may pick any image.
    allowed_image_prefixes: tuple[str, ...] = ()
    public_metrics: bool = False
    log_level: str = "INFO"
    log_format: str = "text"  # or json, as the operator's
    # spec.expireAfterIdleSeconds of the sessions this API creates, unless the
    # request names one; None: they never expire. Sessions made through the API
    # are the ones users forget: an hour-long or a week-long default is typical.
    default_expire_after_idle_seconds: int | None = None

    def operator_view(self) -> OperatorSettings:
        """The same Redis defaults in the operator's shape, so both resolve sessions alike."""
        return OperatorSettings(
            namespaces=(self.namespace,),
            redis=self.redis,
            redis_operator_address=self.redis_api_address,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        env = os.environ if env is None else env
        defaults = cls()

        def get(name: str, default: str) -> str:
            return env.get(ENV_PREFIX + name, default)

        return cls(
            namespace=get("NAMESPACE", defaults.namespace),
            redis=RedisDefaults(
                address=get("REDIS_ADDRESS", defaults.redis.address),
                database=int(get("REDIS_DATABASE", str(defaults.redis.database))),
                secret_name=get("REDIS_SECRET_NAME", defaults.redis.secret_name),
                secret_key=get("REDIS_SECRET_KEY", defaults.redis.secret_key),
                auth=auth_defaults_from_env(lambda name: env.get(ENV_PREFIX + name), ENV_PREFIX),
            ),
            redis_api_address=env.get(ENV_PREFIX + "REDIS_API_ADDRESS") or None,
            tokens_file=env.get(ENV_PREFIX + "TOKENS_FILE") or None,
            tokens=env.get(ENV_PREFIX + "TOKENS") or None,
            listen_host=get("LISTEN_HOST", defaults.listen_host),
            port=int(get("PORT", str(defaults.port))),
            reply_wait_seconds=float(get("REPLY_WAIT", str(defaults.reply_wait_seconds))),
            max_reply_wait_seconds=float(
                get("MAX_REPLY_WAIT", str(defaults.max_reply_wait_seconds))
            ),
            reply_ttl_seconds=int(get("REPLY_TTL", str(defaults.reply_ttl_seconds))),
            default_image=env.get(ENV_PREFIX + "DEFAULT_IMAGE") or None,
            allowed_image_prefixes=tuple(
                p.strip() for p in get("ALLOWED_IMAGE_PREFIXES", "").split(",") if p.strip()
            ),
            public_metrics=get("PUBLIC_METRICS", "false").lower() in {"1", "true", "yes"},
            log_level=get("LOG_LEVEL", defaults.log_level).upper(),
            log_format=get("LOG_FORMAT", defaults.log_format).lower(),
            default_expire_after_idle_seconds=int(get("DEFAULT_EXPIRE_AFTER_IDLE", "0")) or None,
        )
