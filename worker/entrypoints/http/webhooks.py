"""POST /webhooks/{provider}: a provider says a verification may have changed.

Order, so that a refusal costs as little as possible and nothing unsigned is parsed:
the provider's webhook configured (else 404) → body size (413, before reading past the
limit) → signature over the raw body (401) → JSON depth and shape (400) → replay window
(401) → room in the hint buffer (503) → fleet-wide rate and exact-replay check in Redis
(429 / 200 `replayed`) → accepted (202). Every refusal is counted by provider and
reason. An accepted hint names ids the service has not looked up yet, so unknown ids are
answered 202 too (a provider must not retry them forever) and counted when flushed.
Nothing of the body is logged.
"""

from __future__ import annotations

import hashlib

import redis
from aiohttp import web

from models import utcnow
from worker.adapters.metrics.specs import provider_label
from worker.domain.webhooks import Refusal, WebhookRefused, read_webhook
from worker.entrypoints.http.common import (
    ROUTE,
    BodyTimeout,
    answer,
    error,
    ingress,
    read_bounded,
    too_large,
)

RETRY_SOON = {"Retry-After": "1"}
STATUS_OF: dict[Refusal, int] = {
    Refusal.NOT_CONFIGURED: 404,
    Refusal.TOO_LARGE: 413,
    Refusal.TOO_SLOW: 408,
    Refusal.MISSING_SIGNATURE: 401,
    Refusal.BAD_SIGNATURE: 401,
    Refusal.STALE: 401,
    Refusal.REPLAYED: 200,
    Refusal.TOO_DEEP: 400,
    Refusal.MALFORMED: 400,
    Refusal.RATE_LIMITED: 429,
    Refusal.IGNORED_EVENT: 200,
}


async def receive(request: web.Request) -> web.Response:
    request[ROUTE] = "webhook"
    context = ingress(request)
    provider = request.match_info["provider"]
    label = provider_label(provider)

    def refuse(reason: Refusal, message: str, **headers: str) -> web.Response:
        context.metrics.webhooks.labels(label, str(reason)).inc()
        return error(STATUS_OF[reason], str(reason), message, **headers)

    hook = context.service.webhooks.get(provider)
    if hook is None:
        return refuse(Refusal.NOT_CONFIGURED, "no webhook is configured for this provider")
    limit = context.service.max_body_bytes
    try:
        body = await read_bounded(request, limit)
    except BodyTimeout:
        response = refuse(Refusal.TOO_SLOW, "the body did not arrive in time")
        response.force_close()
        return response
    if body is None:
        context.metrics.webhooks.labels(label, str(Refusal.TOO_LARGE)).inc()
        return too_large(limit)
    headers = {name.lower(): value for name, value in request.headers.items()}
    try:
        hint = read_webhook(
            hook.format,
            hook.secret.reveal(),
            headers,
            body,
            now=utcnow(),
            max_depth=context.service.max_json_depth,
            window_seconds=context.service.replay_window_seconds,
        )
    except WebhookRefused as refused:
        return refuse(refused.reason, str(refused))
    buffer = context.buffer
    if buffer is None or buffer.pending + len(hint.external_ids) > buffer.max_pending:
        context.metrics.webhooks.labels(label, "overloaded").inc()
        return error(503, "overloaded", "too many hints waiting; retry later", **RETRY_SOON)
    try:
        verdict = await context.gate.admit(provider, hashlib.sha256(body).hexdigest())
    except redis.RedisError:
        context.metrics.webhooks.labels(label, "unavailable").inc()
        return error(503, "unavailable", "Redis is unavailable; retry later")
    if verdict == "rate_limited":
        return refuse(Refusal.RATE_LIMITED, "webhook rate exceeded", **RETRY_SOON)
    if verdict == "replayed":
        return refuse(Refusal.REPLAYED, "this webhook was already received")
    buffer.offer(provider, hint.external_ids, "webhook")
    context.metrics.webhooks.labels(label, "accepted").inc()
    return answer(202, {"result": "accepted", "ids": len(hint.external_ids)})
