"""The fake providers on an asyncio server: aiohttp's low-level web server, one event loop.

The same `FakeApp` as the threaded server, for load: a thousand requests in
flight cost a thousand small tasks, not a thousand threads, and a request's
latency (`Reply.delay`) is an `asyncio.sleep`, never a blocked thread.
Connections are kept alive; request bodies are bounded as on the threaded
server (MAX_BODY_BYTES, else 400 and the connection closed). The loop runs in a
daemon thread of its own, so `FakeProviders` starts and stops it like the
threaded one, from synchronous code.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping

from aiohttp import web

from devkit.fake_providers.app import FakeApp
from devkit.fake_providers.wire import Reply, Request, json_reply

log = logging.getLogger(__name__)
SERVER_VERSION = "fake-providers/0.1"
# Connections waiting to be accepted: a benchmark opens hundreds at once.
BACKLOG = 1024
# On stop, requests still in flight (sleeping out a latency) get this long, then are dropped.
SHUTDOWN_SECONDS = 0.5
START_TIMEOUT_SECONDS = 10.0


class AioServer:
    """`FakeApp` served by aiohttp on (host, port) from a thread running its own event loop."""

    def __init__(self, address: tuple[str, int], app: FakeApp, max_body_bytes: int) -> None:
        self.address = address
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.ServerRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the aio server is not started")
        return self._port

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fake-providers-aio", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_SECONDS):
            raise RuntimeError("the aio fake provider server did not start in time")
        if self._startup_error is not None:
            self._thread.join()
            raise self._startup_error

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5 + SHUTDOWN_SECONDS)
        self._port = None

    # -- the loop's thread -------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # reported to start()'s caller
                self._startup_error = exc
                if self._runner is not None:
                    loop.run_until_complete(self._runner.cleanup())
                return
            finally:
                self._ready.set()
            loop.run_forever()
            if self._runner is not None:
                loop.run_until_complete(self._runner.cleanup())
        finally:
            loop.close()

    async def _serve(self) -> None:
        server = web.Server(
            self._handle,
            access_log=None,  # quiet: nothing logged per request
            # Every body is read, except one refused as too large: drop that connection at
            # once (aiohttp would otherwise read and discard the rest for up to 10 s).
            lingering_time=0,
        )
        runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=SHUTDOWN_SECONDS)
        await runner.setup()
        self._runner = runner
        host, port = self.address
        site = web.TCPSite(runner, host, port, backlog=BACKLOG, reuse_address=True)
        await site.start()
        self._port = int(runner.addresses[0][1])

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        length = request.content_length
        if length is not None and not 0 <= length <= self.max_body_bytes:
            return _response(json_reply(400, {"error": "bad Content-Length"}), close=True)
        body = await _read_body(request, self.max_body_bytes)
        if body is None:  # a chunked body past the limit
            return _response(json_reply(400, {"error": "request body too large"}), close=True)
        path = request.raw_path.partition("?")[0]
        headers = {name.lower(): value for name, value in request.headers.items()}
        stream = self.app.streams.match(path) if request.method == "GET" else None
        if stream is not None:  # Predicate's status stream (server-sent events)
            refusal = self.app.streams.check(Request(request.method, path, headers), stream)
            if refusal is not None:
                return _response(refusal)
            return await self.app.streams.serve(request, stream)
        try:
            reply = self.app.dispatch(Request(request.method, path, headers, body))
        except Exception:
            log.exception("fake providers: unexpected error for %s %s", request.method, path)
            reply = json_reply(500, {"error": "fake provider bug (see its log)"})
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return _response(reply)


async def _read_body(request: web.BaseRequest, limit: int) -> bytes | None:
    """The request body, or None as soon as it grows past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _response(reply: Reply, *, close: bool = False) -> web.Response:
    headers: Mapping[str, str] = {
        "Content-Type": reply.content_type,
        "Server": SERVER_VERSION,
        **reply.headers,
    }
    response = web.Response(status=reply.status, body=reply.body, headers=headers)
    if close:
        response.force_close()
    return response
