"""The endpoints. Each reads and checks its input, then asks the cache, the store or the
sessions' lists (queues/messages.py). The OpenAPI document names each one (operationId)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from usersession_operator.queues.connections import Unavailable
from usersession_operator.queues.targets import QueueTarget
from usersession_operator.session.messages import Message, Reply
from usersession_operator.session.model import InvalidSession, Phase
from usersession_operator.session.names import child_name
from usersession_operator.session.spec import session_from_body
from usersession_operator.sessionapi import errors, validation, views
from usersession_operator.sessionapi.auth import Principal
from usersession_operator.sessionapi.context import CONTEXT, PRINCIPAL, Context
from usersession_operator.sessionapi.contract import DOCUMENT, OPENAPI
from usersession_operator.sessionapi.errors import ApiError


def _ctx(request: web.Request) -> Context:
    return request.app[CONTEXT]


def _principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]


async def _body(request: web.Request) -> dict[str, Any]:
    return validation.json_object(await request.read())


def _owned(request: web.Request) -> tuple[str, dict[str, Any]]:
    """The session named in the path, if the caller may see it; 404 otherwise."""
    session_id = validation.session_id(request.match_info["id"])
    obj = _ctx(request).cache.get(session_id)
    if obj is None or not _principal(request).may_access(views.owner(obj)):
        raise errors.session_not_found(session_id)
    return session_id, obj


def _target(request: web.Request, obj: Mapping[str, Any]) -> QueueTarget:
    ctx = _ctx(request)
    try:
        session = session_from_body(obj, ctx.operator_view)
    except InvalidSession as exc:
        raise errors.conflict("invalid_session", f"the session is invalid: {exc}") from None
    return QueueTarget.of(session, ctx.operator_view)


def _refuse_if_deleting(session_id: str, obj: Mapping[str, Any]) -> None:
    # A push now would recreate keys the finalizer is about to delete, and leak them.
    if views.deleting(obj):
        raise errors.conflict("session_terminating", f"session {session_id} is being deleted")


# -- public ------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    checks: dict[str, dict[str, Any]] = {}
    for name, probe in (
        ("kubernetes", ctx.store.ping()),
        ("redis", ctx.queues.ping(ctx.default_redis())),
    ):
        try:
            await probe
            checks[name] = {"ok": True}
        except ApiError as exc:
            checks[name] = {"ok": False, "error": exc.message}
        except Unavailable as exc:
            checks[name] = {"ok": False, "error": errors.redis_unavailable(str(exc)).message}
    checks["session_cache"] = {"ok": ctx.cache.synced.is_set()}
    if ctx.cache.last_error:
        checks["session_cache"]["error"] = ctx.cache.last_error
    ok = all(check["ok"] for check in checks.values())
    return web.json_response(
        {"status": "ok" if ok else "unavailable", **checks}, status=200 if ok else 503
    )


async def readyz(request: web.Request) -> web.Response:
    """Ready once the session cache has synced: for a readiness probe. Redis is not
    asked, so a Redis outage leaves the pod in its Service answering each request
    with a JSON 503 (redis_unavailable) instead of connection refused."""
    if _ctx(request).cache.synced.is_set():
        return web.json_response({"status": "ok"})
    return web.json_response({"status": "syncing"}, status=503)


async def livez(request: web.Request) -> web.Response:
    """The process answers: for a liveness probe, which must not fail (and restart the
    pod) just because Redis or the Kubernetes API is down; /health is for readiness."""
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(_ctx(request).metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT)


async def openapi_yaml(request: web.Request) -> web.Response:
    return web.Response(text=OPENAPI.read_text(), content_type="application/yaml")


# -- sessions ----------------------------------------------------------------------


async def create(request: web.Request) -> web.Response:
    ctx, principal = _ctx(request), _principal(request)
    wanted = validation.create_request(await _body(request))
    if principal.admin:
        if wanted.user_id is None:
            raise errors.invalid([{"field": "user_id", "message": "is required for admin tokens"}])
        user = wanted.user_id
    else:
        assert principal.user is not None
        if wanted.user_id is not None and wanted.user_id != principal.user:
            raise errors.forbidden("this token may only create sessions for its own user")
        user = principal.user
    image = wanted.image or ctx.settings.default_image
    if image is None:
        raise errors.invalid([{"field": "image", "message": "is required (no default configured)"}])
    if (
        wanted.image
        and not principal.admin
        and not wanted.image.startswith(ctx.settings.allowed_image_prefixes or ("\0",))
    ):
        raise errors.forbidden("this token may not choose that image")
    session_id = str(uuid.uuid4())
    # One API call and nothing else: when it fails, nothing has been written anywhere.
    expiry = wanted.expire_after_idle_seconds or ctx.settings.default_expire_after_idle_seconds
    created = await ctx.store.create(
        session_id, user, image, wanted.env, storage=wanted.storage, expire_after_idle=expiry
    )
    ctx.cache.remember(created)
    status_url = f"/session/{session_id}/status"
    return web.json_response(
        {"id": session_id, "user_id": user, "phase": Phase.PENDING, "status_url": status_url},
        status=201,
        headers={"Location": status_url},
    )


async def status(request: web.Request) -> web.Response:
    _, obj = _owned(request)
    return web.json_response(views.view(obj))


async def wake(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    session_id, obj = _owned(request)
    _refuse_if_deleting(session_id, obj)
    phase = views.phase(obj)
    if phase == Phase.RUNNING:
        ctx.metrics.wakes.labels("already_running").inc()
        return web.json_response({"id": session_id, "phase": phase, "queued": False})
    message = Message.wake()
    await ctx.queues.push(_target(request, obj), message, ctx.settings.reply_ttl_seconds)
    ctx.metrics.wakes.labels("queued").inc()
    return web.json_response(
        {"id": session_id, "phase": phase, "queued": True, "message_id": message.id}
    )


async def chat(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    session_id, obj = _owned(request)
    text = validation.chat_text(await _body(request))
    wait = validation.wait_seconds(
        request.query, ctx.settings.reply_wait_seconds, ctx.settings.max_reply_wait_seconds
    )
    _refuse_if_deleting(session_id, obj)
    target = _target(request, obj)
    message = Message.chat(target.queue, text)
    await ctx.queues.push(target, message, ctx.settings.reply_ttl_seconds)
    started = time.monotonic()
    raw = None
    if wait > 0:
        try:
            raw = await ctx.queues.wait_reply(target, message.id, wait)
        except Unavailable:
            # The message is queued already: answering 503 would invite a resend.
            raw = None
    if raw is None:
        ctx.metrics.chats.labels("pending").inc()
        return _pending(session_id, message.id)
    ctx.metrics.reply_latency.observe(time.monotonic() - started)
    ctx.metrics.chats.labels("replied").inc()
    return web.json_response(_reply_body(session_id, Reply.decode(raw, message.id)))


async def reply(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    session_id, obj = _owned(request)
    message_id = validation.message_id(request.match_info["message_id"])
    raw, known = await ctx.queues.reply(_target(request, obj), message_id)
    if raw is not None:
        return web.json_response(_reply_body(session_id, Reply.decode(raw, message_id)))
    if known:
        return _pending(session_id, message_id)
    raise ApiError(404, "message_not_found", f"no message {message_id} (or its reply expired)")


def _pending(session_id: str, message_id: str) -> web.Response:
    return web.json_response(
        {
            "id": session_id,
            "message_id": message_id,
            "status": "pending",
            "reply_url": f"/session/{session_id}/reply/{message_id}",
        },
        status=202,
    )


def _reply_body(session_id: str, answer: Reply) -> dict[str, Any]:
    return {
        "id": session_id,
        "message_id": answer.id,
        "status": "replied",
        "reply": answer.text,
        "replied_at": answer.replied_at,
    }


async def sleep(request: web.Request) -> web.Response:
    """Scale to zero now when nothing is queued or in flight; refuse with 409 otherwise.

    The write goes to the Deployment's scale subresource, exactly the field
    and path KEDA itself uses, and only when both lists are empty, so KEDA's
    own rule (replicas 0 while they are empty, 1 as soon as either is not)
    still holds afterwards and the next message wakes the session as usual.
    A message in flight is work the worker is doing: putting the session to
    sleep would interrupt it.
    spec.suspend is not touched: spec belongs to whoever declared the
    session (GitOps), and suspend is a hard sleep that would ignore messages.
    """
    ctx = _ctx(request)
    session_id, obj = _owned(request)
    _refuse_if_deleting(session_id, obj)
    phase = views.phase(obj)
    if (obj.get("spec") or {}).get("suspend"):
        return web.json_response(
            {"id": session_id, "phase": phase, "replicas": 0, "previous_replicas": 0}
        )
    pending, in_flight = await ctx.queues.depths(_target(request, obj))
    if pending or in_flight:
        raise errors.conflict(
            "messages_pending",
            f"{pending} message(s) waiting in the queue and {in_flight} in flight;"
            " the session stays awake for them",
            pending=pending,
            in_flight=in_flight,
        )
    status_obj = obj.get("status") or {}
    deployment = (status_obj.get("children") or {}).get("deployment") or child_name(session_id)
    previous = await ctx.store.scale_to_zero(deployment)
    if previous is None:
        raise errors.conflict(
            "session_not_ready", f"session {session_id} has no Deployment yet; try again shortly"
        )
    return web.json_response(
        {
            "id": session_id,
            "phase": Phase.SLEEPING if previous else phase,
            "replicas": 0,
            "previous_replicas": previous,
        }
    )


async def delete(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    session_id, _ = _owned(request)
    if not await ctx.store.delete(session_id):
        raise errors.session_not_found(session_id)
    return web.json_response({"id": session_id, "status": "deleting"}, status=202)


async def list_sessions(request: web.Request) -> web.Response:
    ctx, principal = _ctx(request), _principal(request)
    wanted_user = validation.user_filter(request.query)
    limit = validation.limit(request.query)
    token = request.query.get("continue") or None
    visible = [
        obj
        for obj in ctx.cache.all()
        if principal.may_access(views.owner(obj))
        and (wanted_user is None or views.owner(obj) == wanted_user)
    ]
    items, next_token = views.page(visible, limit, token)
    return web.json_response(
        {"items": [views.summary(obj) for obj in items], "continue": next_token}
    )
