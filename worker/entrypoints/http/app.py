"""The aiohttp application: routes, the timing/error middleware, start and stop hooks."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from aiohttp import web

from worker.entrypoints.http import api, docs, health, webhooks
from worker.entrypoints.http.common import INGRESS, ROUTE, BodyTimeout, error
from worker.entrypoints.http.context import Ingress

log = structlog.get_logger(__name__)
ROUTES = ("webhook", "api", "health", "metrics", "docs", "other")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Time every request by its bounded route label; an unexpected error is a bare 500."""
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # aiohttp's own 404/405 for unknown paths and methods
        response = error(exc.status, "http_error", exc.reason)
    except BodyTimeout:
        response = error(408, "timeout", "the body did not arrive in time")
        response.force_close()
    except Exception as exc:
        # Never the request, its body or headers: only where and what kind of error.
        log.error(
            "http_unexpected_error", route=request.get(ROUTE, "other"), error=type(exc).__name__
        )
        response = error(500, "internal_error", "unexpected error")
    route = request.get(ROUTE, "other")
    ingress_of(request).metrics.http_duration.labels(route if route in ROUTES else "other").observe(
        time.perf_counter() - started
    )
    return response


def ingress_of(request: web.Request) -> Ingress:
    return request.app[INGRESS]


def build_app(context: Ingress) -> web.Application:
    """The service's application over `context` (started and stopped with the app)."""
    app = web.Application(middlewares=[observe], client_max_size=context.service.max_body_bytes)
    app[INGRESS] = context

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await context.start()
        yield
        await context.stop()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/webhooks/{provider}", webhooks.receive)
    for method, path, handler in api.ROUTES:
        app.router.add_route(method, path, handler)
    app.router.add_get("/livez", health.livez)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/metrics", health.metrics)
    app.router.add_get("/openapi.json", docs.openapi)
    app.router.add_get("/docs", docs.docs)
    return app
