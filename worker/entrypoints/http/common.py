"""What the routes share: the app keys, JSON answers, bounded body reads."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from worker.entrypoints.http.context import Ingress

INGRESS = web.AppKey("ingress", Ingress)
ROUTE = web.RequestKey("kyc_route", str)  # the bounded route label for metrics


def ingress(request: web.Request) -> Ingress:
    return request.app[INGRESS]


def answer(status: int, document: dict[str, Any], **headers: str) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(document, sort_keys=True, default=str).encode(),
        content_type="application/json",
        headers=headers or None,
    )


def error(status: int, code: str, message: str, **headers: str) -> web.Response:
    return answer(status, {"error": code, "message": message}, **headers)


# A body must arrive within this long: a client trickling bytes cannot hold a request open.
BODY_DEADLINE_SECONDS = 10.0


class BodyTimeout(Exception):
    """The body did not arrive within BODY_DEADLINE_SECONDS."""


async def read_bounded(request: web.Request, limit: int) -> bytes | None:
    """The body, or None as soon as it exceeds `limit` bytes (never read further).

    A declared Content-Length above the limit is refused before a byte is read; a body
    slower than BODY_DEADLINE_SECONDS raises BodyTimeout.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        return None
    chunks: list[bytes] = []
    total = 0
    try:
        async with asyncio.timeout(BODY_DEADLINE_SECONDS):
            async for chunk in request.content.iter_chunked(16384):
                total += len(chunk)
                if total > limit:
                    return None
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimeout from None
    return b"".join(chunks)


def too_large(limit: int) -> web.Response:
    response = error(413, "too_large", f"the body is larger than {limit} bytes")
    response.force_close()  # the rest of the body is not read: the connection cannot be reused
    return response
