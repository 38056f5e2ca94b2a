"""The aiohttp application: routes, middlewares and the lifecycle of its clients."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from kubernetes import client

from usersession_operator.kube.client import load_api_client
from usersession_operator.sessionapi import endpoints, errors
from usersession_operator.sessionapi.auth import Authenticator
from usersession_operator.sessionapi.cache import SessionCache
from usersession_operator.sessionapi.context import CONTEXT, PRINCIPAL, Context
from usersession_operator.sessionapi.metrics import ApiMetrics
from usersession_operator.sessionapi.queues import SessionQueues
from usersession_operator.sessionapi.settings import ApiSettings
from usersession_operator.sessionapi.store import SessionStore
from usersession_operator.sessionapi.validation import MAX_BODY_BYTES

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/health", endpoints.health),
    ("GET", "/livez", endpoints.livez),
    ("GET", "/metrics", endpoints.metrics),
    ("GET", "/openapi.json", endpoints.openapi_json),
    ("GET", "/openapi.yaml", endpoints.openapi_yaml),
    ("POST", "/session/create", endpoints.create),
    ("GET", "/session/{id}/status", endpoints.status),
    ("POST", "/session/{id}/wake", endpoints.wake),
    ("POST", "/session/{id}/chat", endpoints.chat),
    ("GET", "/session/{id}/reply/{message_id}", endpoints.reply),
    ("POST", "/session/{id}/sleep", endpoints.sleep),
    # Not /session/create: DELETE there would otherwise look like deleting a session
    # called "create", and a 405 there would advertise DELETE as allowed.
    ("DELETE", "/session/{id:(?!create$)[^/]+}", endpoints.delete),
    ("GET", "/sessions", endpoints.list_sessions),
]
PUBLIC = {"/health", "/livez", "/openapi.json", "/openapi.yaml"}
# Query parameters each route understands; any other is refused, so a typo such
# as ?limt=5 is an error instead of silently meaning the default.
QUERY: dict[str, frozenset[str]] = {
    "/session/{id}/chat": frozenset({"wait"}),
    "/sessions": frozenset({"user", "limit", "continue"}),
}


def create_app(
    settings: ApiSettings,
    api_client: client.ApiClient | None = None,
    authenticator: Authenticator | None = None,
) -> web.Application:
    api_client = api_client or load_api_client()
    store = SessionStore(api_client, settings.namespace)
    context = Context(
        settings=settings,
        operator_view=settings.operator_view(),
        auth=authenticator
        or Authenticator(tokens_file=settings.tokens_file, tokens=settings.tokens),
        cache=SessionCache(api_client, settings.namespace),
        store=store,
        queues=SessionQueues(
            store.read_secret_value,
            settings.max_reply_wait_seconds,
            read_config_map=store.read_config_map_value,
        ),
        metrics=ApiMetrics(),
    )
    public = PUBLIC | ({"/metrics"} if settings.public_metrics else set())
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[_measure, _errors, _authenticate(public), _known_query],
    )
    app[CONTEXT] = context
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    app.cleanup_ctx.append(_lifecycle)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    context = app[CONTEXT]
    context.cache.start()
    yield
    context.cache.stop()
    await context.queues.close()


def _route(request: web.Request) -> str:
    # The template, never the concrete path: ids would explode the label set.
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def _measure(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.monotonic()
    response = await handler(request)  # _errors below always answers with a response
    metrics = request.app[CONTEXT].metrics
    labels = (_route(request), request.method, str(response.status))
    metrics.requests.labels(*labels).inc()
    metrics.latency.labels(*labels).observe(time.monotonic() - started)
    return response


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.ApiError as exc:
        return errors.response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return errors.response(errors.from_http_exception(exc))
    except Exception as exc:
        return errors.response(errors.internal(exc))


def _authenticate(public: set[str]) -> Middleware:
    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Unknown paths fall through to aiohttp's 404, which reveals nothing.
        if request.match_info.http_exception is None and _route(request) not in public:
            context = request.app[CONTEXT]
            request[PRINCIPAL] = context.auth.authenticate(request.headers.get("Authorization"))
        return await handler(request)

    return authenticate


@web.middleware
async def _known_query(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.match_info.http_exception is None:
        unknown = set(request.query) - QUERY.get(_route(request), frozenset())
        if unknown:
            names = ", ".join(sorted(repr(n[:32]) for n in unknown))
            raise errors.bad_request("invalid_query", f"unknown query parameter(s): {names}")
    return await handler(request)
