"""The aiohttp application: routes, middlewares and the lifecycle of its clients."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from usersession_operator.kube.client import CALL_TIMEOUT, ApiClient, load_api_client
from usersession_operator.kube.secrets import Secrets
from usersession_operator.queues.connections import RedisConnections, Unavailable
from usersession_operator.queues.messages import SessionLists
from usersession_operator.sessionapi import endpoints, errors
from usersession_operator.sessionapi.auth import Authenticator
from usersession_operator.sessionapi.cache import SessionCache
from usersession_operator.sessionapi.context import CONTEXT, PRINCIPAL, Context
from usersession_operator.sessionapi.contract import DOCUMENT
from usersession_operator.sessionapi.metrics import ApiMetrics
from usersession_operator.sessionapi.settings import ApiSettings
from usersession_operator.sessionapi.store import SessionStore
from usersession_operator.sessionapi.validation import MAX_BODY_BYTES

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Paths served by a narrower pattern than the document's template: DELETE /session/{id}
# must not match /session/create, where a 405 would advertise DELETE as allowed.
_PATTERNS = {("DELETE", "/session/{id}"): "/session/{id:(?!create$)[^/]+}"}


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    paths = DOCUMENT["paths"]
    return [
        (method.upper(), path, operation)
        for path, item in paths.items()
        for method, operation in item.items()
    ]


# The routes, public paths and query parameters, as the OpenAPI document declares them.
ROUTES: list[tuple[str, str, Handler]] = [
    (method, _PATTERNS.get((method, path), path), getattr(endpoints, op["operationId"]))
    for method, path, op in _operations()
]
PUBLIC = {path for _, path, op in _operations() if op.get("security") == []}
# Any other query parameter is refused, so a typo such as ?limt=5 is an error
# instead of silently meaning the default.
QUERY: dict[str, frozenset[str]] = {
    path: frozenset(p["name"] for p in op.get("parameters", []) if p.get("in") == "query")
    for _, path, op in _operations()
    if any(p.get("in") == "query" for p in op.get("parameters", []))
}


def create_app(
    settings: ApiSettings,
    api_client: ApiClient | None = None,
    authenticator: Authenticator | None = None,
) -> web.Application:
    api_client = api_client or load_api_client()
    store = SessionStore(api_client, settings.namespace)
    secrets = Secrets(api_client, CALL_TIMEOUT)
    context = Context(
        settings=settings,
        operator_view=settings.operator_view(),
        auth=authenticator
        or Authenticator(tokens_file=settings.tokens_file, tokens=settings.tokens),
        cache=SessionCache(api_client, settings.namespace),
        store=store,
        queues=SessionLists(
            RedisConnections(secrets.secret, secrets.config_map), settings.max_reply_wait_seconds
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
    except Unavailable as exc:
        return errors.response(errors.redis_unavailable(str(exc)))
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
