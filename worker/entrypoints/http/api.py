"""The app API under /api/v1: track, status, history, poll-now, with bearer tokens and scopes.

Authentication on every call: no or unknown token → 401, a revoked one → 401 (`revoked`,
checked fleet-wide in Redis), a token without the route's scope → 403. Answers are the
same as `KycClient` and the CLI give: tracking refusals (unknown provider, bad id or
type, a type conflict) are 422 with the reason, a database that is down is 503. Reads
never return the provider's raw answer. Nothing personal is logged; tokens appear in
nothing but their name.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis
from aiohttp import web

from models import utcnow
from worker.domain.api_tokens import ApiToken, Scope, authenticate, bearer_token
from worker.domain.errors import RequestRejected, StorageError, StorageUnavailableError
from worker.entrypoints.http.common import ROUTE, answer, error, ingress, read_bounded
from worker.entrypoints.http.context import REVOKED_TOKENS_KEY, Ingress
from worker.services import admin
from worker.services.app_views import app_status
from worker.services.operations import NudgeOutcome, PollNotEnqueued, poll_now
from worker.services.storage_errors import storage_errors
from worker.services.tracking import track_verification

MAX_API_BODY_BYTES = 4096
T = TypeVar("T")


class ApiRefusal(Exception):
    def __init__(self, response: web.Response, result: str) -> None:
        super().__init__(result)
        self.response = response
        self.result = result


def _count(context: Ingress, route: str, result: str) -> None:
    context.metrics.api_requests.labels(route, result).inc()


async def authorize(request: web.Request, scope: Scope) -> ApiToken:
    context = ingress(request)
    token = authenticate(bearer_token(request.headers.get("Authorization")), context.service.tokens)
    challenge = {"WWW-Authenticate": 'Bearer realm="kyc-poller"'}
    if token is None:
        raise ApiRefusal(
            error(401, "unauthorized", "a valid bearer token is required", **challenge),
            "unauthorized",
        )
    try:
        revoked = await context.aredis.sismember(REVOKED_TOKENS_KEY, token.name)  # type: ignore[misc]
    except redis.RedisError:
        raise ApiRefusal(
            error(503, "unavailable", "cannot check the token; retry later"), "unavailable"
        ) from None
    if revoked:
        raise ApiRefusal(error(401, "revoked", "this token was revoked", **challenge), "revoked")
    if scope not in token.scopes:
        raise ApiRefusal(
            error(403, "forbidden", f"this token lacks the {scope.value!r} scope"), "forbidden"
        )
    return token


async def _blocking(context: Ingress, call: Callable[[], T]) -> T:
    def guarded() -> T:
        with storage_errors():
            return call()

    return await asyncio.get_running_loop().run_in_executor(context.executor, guarded)


def _route(
    name: str, scope: Scope
) -> Callable[
    [Callable[[web.Request, Ingress], Awaitable[tuple[web.Response, str]]]],
    Callable[[web.Request], Awaitable[web.Response]],
]:
    """Authorize with `scope`, run the handler, count (route, result), map the errors."""

    def wrap(
        handler: Callable[[web.Request, Ingress], Awaitable[tuple[web.Response, str]]],
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def run(request: web.Request) -> web.Response:
            request[ROUTE] = "api"
            context = ingress(request)
            try:
                await authorize(request, scope)
                response, result = await handler(request, context)
            except ApiRefusal as refusal:
                response, result = refusal.response, refusal.result
            except RequestRejected as exc:
                response, result = error(422, "rejected", str(exc)), "rejected"
            except StorageUnavailableError:
                response = error(503, "unavailable", "the database is unavailable; retry later")
                result = "unavailable"
            except StorageError:
                response, result = error(500, "storage_error", "database error"), "error"
            _count(context, name, result)
            return response

        return run

    return wrap


def _view_ref(request: web.Request) -> tuple[str, str]:
    return request.match_info["provider"], request.match_info["external_id"]


@_route("track", Scope.TRACK)
async def track(request: web.Request, context: Ingress) -> tuple[web.Response, str]:
    body = await read_bounded(request, MAX_API_BODY_BYTES)
    if body is None:
        return error(413, "too_large", f"at most {MAX_API_BODY_BYTES} bytes"), "rejected"
    try:
        document: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        document = None
    if not isinstance(document, dict):
        return error(400, "malformed", "the body must be a JSON object"), "rejected"
    unexpected = sorted(set(document) - {"provider", "external_id", "verification_type"})
    if unexpected:
        return error(400, "malformed", f"unknown fields: {', '.join(unexpected)[:200]}"), "rejected"
    provider = document.get("provider")
    external_id = document.get("external_id")
    verification_type = document.get("verification_type")
    tracked = await _blocking(
        context, lambda: track_verification(context.db, provider, external_id, verification_type)
    )
    canonical = await _blocking(
        context, lambda: admin.canonical_ref(str(provider), str(external_id))
    )
    return (
        answer(
            201 if tracked.created else 200,
            {
                "verification_id": tracked.verification_id,
                "created": tracked.created,
                "status": str(tracked.status),
                "provider": provider,
                "external_id": canonical,
            },
        ),
        "ok",
    )


@_route("status", Scope.READ)
async def status(request: web.Request, context: Ingress) -> tuple[web.Response, str]:
    provider, external_id = _view_ref(request)
    view = await _blocking(context, lambda: app_status(context.db, provider, external_id))
    if view is None:
        return error(404, "not_found", "this verification is not tracked"), "not_found"
    return answer(200, view.to_json()), "ok"


@_route("history", Scope.READ)
async def history(request: web.Request, context: Ingress) -> tuple[web.Response, str]:
    provider, external_id = _view_ref(request)
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        return error(400, "malformed", "limit must be a whole number"), "rejected"
    limit = max(1, min(limit, admin.MAX_LIMIT))
    view = await _blocking(context, lambda: app_status(context.db, provider, external_id))
    if view is None:
        return error(404, "not_found", "this verification is not tracked"), "not_found"
    items = await _blocking(
        context, lambda: admin.get_history(context.db, view.verification_id, limit)
    )
    return (
        answer(
            200,
            {
                "verification_id": view.verification_id,
                "status": view.status,
                "transitions": [item.to_json() for item in items],
            },
        ),
        "ok",
    )


@_route("poll_now", Scope.TRACK)
async def nudge(request: web.Request, context: Ingress) -> tuple[web.Response, str]:
    provider, external_id = _view_ref(request)
    settings = context.settings

    def call() -> Any:
        return poll_now(
            context.db,
            context.redis,
            context.queue,
            provider,
            external_id,
            now=utcnow(),
            lease_seconds=settings.claim_lease_seconds,
            window_seconds=context.service.collapse_seconds,
        )

    try:
        result = await _blocking(context, call)
    except PollNotEnqueued:
        return (
            error(
                503,
                "not_enqueued",
                "claimed, but the broker refused the poll; it is polled when its claim runs out",
            ),
            "unavailable",
        )
    if result.outcome is NudgeOutcome.UNKNOWN:
        return error(404, "not_found", "this verification is not tracked"), "not_found"
    return (
        answer(
            200,
            {
                "outcome": str(result.outcome),
                "verification_id": result.verification_id,
                "status": result.status,
            },
        ),
        "ok",
    )


ROUTES = (
    ("POST", "/api/v1/verifications", track),
    ("GET", "/api/v1/verifications/{provider}/{external_id}", status),
    ("GET", "/api/v1/verifications/{provider}/{external_id}/history", history),
    ("POST", "/api/v1/verifications/{provider}/{external_id}/poll-now", nudge),
)
