from __future__ import annotations

from usersession_operator.sessionapi.cli import _parser, settings_from
from usersession_operator.sessionapi.settings import ApiSettings


def test_env_then_flags() -> None:
    env = {
        "SESSIONAPI_NAMESPACE": "sessions",
        "SESSIONAPI_REDIS_ADDRESS": "redis.sessions.svc:6380",
        "SESSIONAPI_TOKENS_FILE": "/etc/sessionapi/tokens.yaml",
        "SESSIONAPI_PORT": "9000",
        "SESSIONAPI_REPLY_WAIT": "2.5",
        "SESSIONAPI_ALLOWED_IMAGE_PREFIXES": "registry.example.com/, ghcr.io/acme/",
        "SESSIONAPI_PUBLIC_METRICS": "true",
        "SESSIONAPI_DEFAULT_EXPIRE_AFTER_IDLE": "86400",
    }
    settings = ApiSettings.from_env(env)
    assert settings.namespace == "sessions"
    assert settings.redis.address == "redis.sessions.svc:6380"
    assert settings.redis.secret_name == "redis-auth"
    assert settings.port == 9000
    assert settings.reply_wait_seconds == 2.5
    assert settings.allowed_image_prefixes == ("registry.example.com/", "ghcr.io/acme/")
    assert settings.public_metrics is True
    assert settings.listen_host == "127.0.0.1"
    assert settings.default_expire_after_idle_seconds == 86400
    assert ApiSettings.from_env({}).default_expire_after_idle_seconds is None  # never expire

    args = _parser().parse_args(["--port", "8081", "-n", "other", "--redis-address", "r:1"])
    merged = settings_from(args, settings)
    assert (merged.port, merged.namespace, merged.redis.address) == (8081, "other", "r:1")
    assert merged.tokens_file == "/etc/sessionapi/tokens.yaml"


def test_operator_view_resolves_sessions_like_the_operator() -> None:
    settings = ApiSettings.from_env({"SESSIONAPI_REDIS_API_ADDRESS": "127.0.0.1:6390"})
    view = settings.operator_view()
    assert view.redis == settings.redis
    assert view.redis_operator_address == "127.0.0.1:6390"
