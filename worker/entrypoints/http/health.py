"""/livez: the process answers (cheap). /healthz: it can do its job (database schema and Redis,
`worker.services.checks.health_checks`, each bounded); 503 with the failing check otherwise.
/metrics: this process's own metrics."""

from __future__ import annotations

import asyncio

from aiohttp import web

from worker.entrypoints.http.common import ROUTE, answer, ingress
from worker.services.checks import health_checks, health_line

HEALTH_TIMEOUT_SECONDS = 2.0


async def livez(request: web.Request) -> web.Response:
    request[ROUTE] = "health"
    return answer(200, {"status": "alive"})


async def healthz(request: web.Request) -> web.Response:
    request[ROUTE] = "health"
    context = ingress(request)
    checks = await asyncio.get_running_loop().run_in_executor(
        context.executor, health_checks, context.settings, HEALTH_TIMEOUT_SECONDS
    )
    healthy = all(check.passed for check in checks)
    pending = context.buffer.pending if context.buffer is not None else 0
    return answer(
        200 if healthy else 503,
        {
            "status": "healthy" if healthy else "unhealthy",
            "line": health_line(checks),
            "hints_waiting": pending,
        },
    )


async def metrics(request: web.Request) -> web.Response:
    request[ROUTE] = "metrics"
    body, content_type = ingress(request).metrics.exposition()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response
