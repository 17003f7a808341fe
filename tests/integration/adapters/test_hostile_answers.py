"""Hostile provider answers through the whole engine: real transport, Notus adapter, SQL store.

A loopback server plays a Notus that answers some sessions with garbage (a gzip
bomb, a huge body, a trickle, 100k-deep JSON, NUL characters). Each hostile
session ends its poll with its own error code recorded on its row; the
well-behaved sessions in the same batch are polled and written as usual; nothing
is left pending with nothing recorded. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from collections.abc import Iterator

import pytest
from aiohttp import web
from sqlalchemy import select

from models import Verification, utcnow
from worker.adapters.common import ApiKeySettings
from worker.adapters.event_loop import EventLoopThread
from worker.adapters.notus import NotusAdapter
from worker.adapters.sql_store import SqlStore
from worker.adapters.transport import AiohttpTransport, TransportLimits
from worker.domain.decisions import PollPolicy
from worker.domain.errors import ErrorCode
from worker.services.polling import PollEngine
from worker.services.tracking import track_verification

LIMITS = TransportLimits(
    connect_timeout=1.0, read_timeout=1.0, deadline=2.0, max_response_bytes=256 * 1024
)
PATH = "/api/v1/kyc/individual-verification-sessions/standard/{id}"


def session(status: str, **extra: object) -> bytes:
    return json.dumps({"session": {"id": "x", "status": status, **extra}}).encode()


def bomb() -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return b"".join(packer.compress(b"\0" * (1 << 20)) for _ in range(256)) + packer.flush()


BOMB = bomb()


async def notus(request: web.Request) -> web.StreamResponse:
    kind = request.match_info["id"].split("-")[0]
    if kind == "good":
        return web.Response(body=session("IN_REVIEW"), content_type="application/json")
    if kind == "nul":
        body = session("IN_REVIEW", firstName="Al\u0000ice", note="\ud800")
        return web.Response(body=body, content_type="application/json")
    if kind == "bomb":
        return web.Response(body=BOMB, headers={"Content-Encoding": "gzip"})
    if kind == "huge":
        return web.Response(body=b" " * (LIMITS.max_response_bytes + 10))
    if kind == "deep":
        return web.Response(body=b"[" * 100_000 + b"]" * 100_000)
    if kind == "fat":  # fits the response limit, too big to store whole
        body = session("IN_REVIEW", blob="x" * 100_000)
        return web.Response(body=gzip.compress(body), headers={"Content-Encoding": "gzip"})
    if kind == "trickle":
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(100):
            await response.write(b" ")
            await asyncio.sleep(0.5)
        return response
    raise web.HTTPNotFound()


EXPECTED_ERRORS = {
    "bomb": ErrorCode.RESPONSE_TOO_LARGE,
    "huge": ErrorCode.RESPONSE_TOO_LARGE,
    "deep": ErrorCode.RESPONSE_TOO_DEEP,
    "trickle": ErrorCode.TIMEOUT,
}


@pytest.fixture(scope="module")
def loop() -> Iterator[EventLoopThread]:
    thread = EventLoopThread("hostile-test")
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def notus_url(loop: EventLoopThread) -> Iterator[str]:
    app = web.Application()
    app.router.add_get(PATH, notus)
    runner = web.AppRunner(app)

    async def start() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=512)
        await site.start()
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    port = loop.run(start())
    yield f"http://127.0.0.1:{port}"
    loop.run(runner.cleanup())


def test_hostile_answers_are_recorded_and_never_hold_up_the_batch(db, loop, notus_url):
    kinds = ["good", "nul", "bomb", "huge", "deep", "fat", "trickle"]
    ids = {kind: track_verification(db, "notus", f"{kind}-1").verification_id for kind in kinds}
    transport = AiohttpTransport(LIMITS)
    engine = PollEngine(
        SqlStore(db),
        {"notus": NotusAdapter(ApiKeySettings(base_url=notus_url, api_key="k"))},
        transport,
        PollPolicy(max_stored_payload_bytes=16 * 1024),
        runner=lambda coroutine: loop.run(coroutine, timeout=60),
        clock=utcnow,
    )
    try:
        report = engine.poll_batch(list(ids.values()))
    finally:
        loop.run(transport.close())
    assert report.polled == len(kinds) and report.conflicts == 0

    with db.session() as session_:
        rows = {
            row.external_id.split("-")[0]: row
            for row in session_.scalars(
                select(Verification).where(Verification.id.in_(ids.values()))
            )
        }
    for kind, code in EXPECTED_ERRORS.items():
        row = rows[kind]
        assert (row.status, row.last_error_code) == ("pending", code), kind
        assert row.error_count == 1 and row.next_poll_at is not None, kind
    assert rows["good"].status == "in_review"
    # NUL and a lone surrogate are removed before storage (PostgreSQL's jsonb refuses them).
    nul = rows["nul"]
    assert nul.status == "in_review"
    assert nul.result["response"]["session"]["firstName"] == "Alice"
    # A payload too big to store is kept as a marker; the row still moved on.
    fat = rows["fat"]
    assert fat.status == "in_review"
    assert fat.result["response"]["_omitted"] == "too_large"


def test_an_answer_over_the_size_limit_is_refused_before_it_is_parsed(db, loop, notus_url):
    vid = track_verification(db, "notus", "deep-2").verification_id
    limits = TransportLimits(max_response_bytes=64 * 1024)
    transport = AiohttpTransport(limits)
    engine = PollEngine(
        SqlStore(db),
        {"notus": NotusAdapter(ApiKeySettings(base_url=notus_url, api_key="k"))},
        transport,
        PollPolicy(),
        runner=lambda coroutine: loop.run(coroutine, timeout=60),
        clock=utcnow,
    )
    try:
        engine.poll_batch([vid])
    finally:
        loop.run(transport.close())
    with db.session() as session_:
        row = session_.get(Verification, vid)
    assert row.last_error_code == ErrorCode.RESPONSE_TOO_LARGE
    assert row.permanent_error_count == 1
