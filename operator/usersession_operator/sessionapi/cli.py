"""`usersession-api`: serve the session API. Settings from SESSIONAPI_* env, flags override."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

from aiohttp import web

from usersession_operator.observability import LOG_FORMATS, configure_logging
from usersession_operator.session.redisrefs import RedisDefaults
from usersession_operator.sessionapi.app import create_app
from usersession_operator.sessionapi.auth import TokenConfigError
from usersession_operator.sessionapi.settings import ApiSettings
from usersession_operator.settings import with_flags


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="usersession-api", description=__doc__)
    add = parser.add_argument
    add("-n", "--namespace", help="namespace of the UserSessions (SESSIONAPI_NAMESPACE)")
    add("--listen-host", help="address to listen on; default 127.0.0.1 (SESSIONAPI_LISTEN_HOST)")
    add("--port", type=int, help="port to listen on; default 8000 (SESSIONAPI_PORT)")
    add(
        "--tokens-file",
        help="JSON/YAML file mapping bearer tokens to {user: id} or {admin: true}, e.g. a "
        "mounted Secret; re-read when it changes (SESSIONAPI_TOKENS_FILE; or the mapping "
        "itself in SESSIONAPI_TOKENS)",
    )
    add(
        "--redis-address",
        help="host:port of the default Redis as sessions see it (SESSIONAPI_REDIS_ADDRESS)",
    )
    add(
        "--redis-api-address",
        help="host:port where this process reaches that Redis, if different "
        "(SESSIONAPI_REDIS_API_ADDRESS)",
    )
    add(
        "--redis-secret-name",
        help="Secret holding the Redis password (SESSIONAPI_REDIS_SECRET_NAME)",
    )
    add(
        "--reply-wait",
        type=float,
        help="seconds /chat waits for a reply by default (SESSIONAPI_REPLY_WAIT)",
    )
    add("--default-image", help="session image when create names none (SESSIONAPI_DEFAULT_IMAGE)")
    add(
        "--public-metrics",
        action="store_true",
        default=None,
        help="serve /metrics without a token (SESSIONAPI_PUBLIC_METRICS)",
    )
    add("--log-level", help="DEBUG, INFO, WARNING... (SESSIONAPI_LOG_LEVEL)")
    return parser


def settings_from(args: argparse.Namespace, base: ApiSettings) -> ApiSettings:
    settings = with_flags(
        base,
        args,
        {
            "namespace": "namespace",
            "listen_host": "listen_host",
            "port": "port",
            "tokens_file": "tokens_file",
            "redis_api_address": "redis_api_address",
            "reply_wait": "reply_wait_seconds",
            "default_image": "default_image",
            "public_metrics": "public_metrics",
            "log_level": "log_level",
        },
    )
    redis: RedisDefaults = base.redis
    if args.redis_address:
        redis = dataclasses.replace(redis, address=args.redis_address)
    if args.redis_secret_name:
        redis = dataclasses.replace(redis, secret_name=args.redis_secret_name)
    return dataclasses.replace(settings, redis=redis)


def main(argv: Sequence[str] | None = None) -> int:
    settings = settings_from(_parser().parse_args(argv), ApiSettings.from_env())
    if settings.log_format not in LOG_FORMATS:
        print(
            f"usersession-api: SESSIONAPI_LOG_FORMAT must be text or json, "
            f"got {settings.log_format!r}",
            file=sys.stderr,
        )
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        app = create_app(settings)
    except (TokenConfigError, OSError) as exc:
        print(f"usersession-api: cannot load tokens: {exc}", file=sys.stderr)
        return 2
    web.run_app(app, host=settings.listen_host, port=settings.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
