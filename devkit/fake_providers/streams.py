"""Fake Predicate status streams: GET /predicate/api/v1/status/realtime/{type}/{sessionId} (SSE).

Served by the aio server only (the threaded one answers 404). A stream checks the bearer
key like a status request (401), answers 404 for an unknown session and 503 while
`refuse(session, n)` has refusals left; otherwise it sends one `status` event after
`message_delay` seconds (its data: {"sessionId", "event": "status_changed"}, no status:
kyc-poller must poll for that), then a comment every `heartbeat` seconds until
`duration` seconds have passed, and ends. A stream never consumes a scripted step.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import Counter
from typing import TYPE_CHECKING

from aiohttp import web

from devkit.fake_providers.wire import Reply, Request, json_reply

if TYPE_CHECKING:
    from devkit.fake_providers.app import FakeApp

STREAM_PATH = re.compile(
    r"/predicate/api/v1/status/realtime/(?P<type>individual|business)/(?P<id>[^/]+)"
)


class FakeStreams:
    """Stream behaviour and counts, scriptable from tests."""

    def __init__(self, app: FakeApp) -> None:
        self.app = app
        self.message_delay = 0.1
        self.heartbeat = 0.5
        self.duration = 30.0
        self._refusals: Counter[str] = Counter()
        self._opened: Counter[str] = Counter()
        self._lock = threading.Lock()

    def refuse(self, session_id: str, count: int) -> None:
        """The session's next `count` stream requests answer 503."""
        with self._lock:
            self._refusals[session_id] = count

    def opened(self, session_id: str) -> int:
        """Streams that were answered 200 for the session so far."""
        with self._lock:
            return self._opened[session_id]

    def match(self, path: str) -> str | None:
        found = STREAM_PATH.fullmatch(path)
        return None if found is None else found.group("id")

    def check(self, request: Request, session_id: str) -> Reply | None:
        """The refusal to answer instead of a stream, or None to stream."""
        refusal = self.app.provider("predicate").check_auth(request)
        if refusal is not None:
            return refusal
        if self.app.store.describe("predicate", session_id) is None:
            return json_reply(404, {"error": "Session not found"})
        with self._lock:
            if self._refusals[session_id] > 0:
                self._refusals[session_id] -= 1
                return json_reply(503, {"error": "stream unavailable"})
            self._opened[session_id] += 1
        return None

    async def serve(self, request: web.BaseRequest, session_id: str) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        ends = loop.time() + self.duration
        await asyncio.sleep(self.message_delay)
        data = json.dumps({"sessionId": session_id, "event": "status_changed"})
        await response.write(f"event: status\ndata: {data}\n\n".encode())
        try:
            while loop.time() < ends:
                await asyncio.sleep(self.heartbeat)
                await response.write(b": keep-alive\n\n")
        except (ConnectionResetError, RuntimeError):
            return response  # the client went away
        await response.write_eof()
        return response
