"""Every bound of the transport, against a hostile local HTTP server (aiohttp, loopback)."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import socket
import ssl
import threading
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from worker.adapters.contract import ProviderRequest
from worker.adapters.event_loop import EventLoopThread
from worker.adapters.http import parse_json_object
from worker.adapters.transport import AiohttpTransport, TransportLimits
from worker.domain.errors import (
    ErrorCode,
    PermanentProviderError,
    ProviderError,
    ProviderUnavailableError,
)

LIMITS = TransportLimits(
    connect_timeout=1.0,
    read_timeout=1.0,
    deadline=1.5,
    max_response_bytes=64 * 1024,
    max_json_depth=16,
)


def gzip_bomb(unpacked: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * (1 << 20)
    parts = [compressor.compress(chunk) for _ in range(unpacked // len(chunk))]
    return b"".join(parts) + compressor.flush()


async def handle(request: web.Request) -> web.StreamResponse:
    kind = request.match_info["kind"]
    if kind == "ok":
        return web.json_response({"status": "ok", "name": "A\u0000B"})
    if kind == "gzip":
        body = gzip.compress(json.dumps({"status": "ok"}).encode())
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})
    if kind == "deflate":
        body = zlib.compress(json.dumps({"status": "ok"}).encode())
        return web.Response(body=body, headers={"Content-Encoding": "deflate"})
    if kind == "bomb":
        return web.Response(body=BOMB, headers={"Content-Encoding": "gzip"})
    if kind == "bad-gzip":
        return web.Response(body=b"not gzip at all", headers={"Content-Encoding": "gzip"})
    if kind == "brotli":
        return web.Response(body=b"xx", headers={"Content-Encoding": "br"})
    if kind == "big":
        return web.Response(body=b"x" * (LIMITS.max_response_bytes + 1))
    if kind in ("big-chunked", "trickle"):
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(1000):
            if kind == "trickle":
                await response.write(b" ")
                await asyncio.sleep(0.2)
            else:
                await response.write(b"y" * 8192)
        await response.write_eof()
        return response
    if kind == "lying-length":
        return web.Response(
            body=b"{}", headers={"Content-Length": str(LIMITS.max_response_bytes * 10)}
        )
    if kind == "deep":
        return web.Response(body=b"[" * 30_000 + b"]" * 30_000, content_type="application/json")
    if kind == "deep-object":
        depth = LIMITS.max_json_depth + 1
        return web.Response(body=('{"a":' * depth + "1" + "}" * depth).encode())
    if kind == "redirect":
        raise web.HTTPFound("http://127.0.0.1:1/elsewhere")
    raise web.HTTPNotFound()


BOMB = gzip_bomb(64 << 20)


@pytest.fixture(scope="module")
def loop() -> Iterator[EventLoopThread]:
    thread = EventLoopThread("transport-test")
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def server(loop: EventLoopThread) -> Iterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{kind}", handle)
    runner = web.AppRunner(app)

    async def start() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    port = loop.run(start())
    yield f"http://127.0.0.1:{port}"
    loop.run(runner.cleanup())


@pytest.fixture
def send(loop: EventLoopThread, server: str) -> Iterator[Any]:
    transport = AiohttpTransport(LIMITS)

    def call(kind: str, method: str = "GET") -> Any:
        request = ProviderRequest(method, f"{server}/{kind}", {"x-api-key": "k"})
        return loop.run(transport.send("fake", request), timeout=30)

    yield call
    loop.run(transport.close())


def error_of(send: Any, kind: str) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        send(kind)
    return info.value


def test_a_plain_answer_comes_back_whole(send):
    response = send("ok")
    assert response.status == 200
    assert json.loads(response.body) == {"status": "ok", "name": "A\u0000B"}
    assert response.header("Content-Type").startswith("application/json")


@pytest.mark.parametrize("kind", ["gzip", "deflate"])
def test_compressed_answers_are_decompressed(send, kind):
    assert json.loads(send(kind).body) == {"status": "ok"}


def test_a_gzip_bomb_stops_at_the_size_limit(send):
    error = error_of(send, "bomb")
    assert isinstance(error, PermanentProviderError)
    assert error.code is ErrorCode.RESPONSE_TOO_LARGE


@pytest.mark.parametrize("kind", ["big", "big-chunked", "lying-length"])
def test_oversized_bodies_are_refused(send, kind):
    assert error_of(send, kind).code is ErrorCode.RESPONSE_TOO_LARGE


def test_a_trickling_body_ends_at_the_deadline(send):
    error = error_of(send, "trickle")
    assert isinstance(error, ProviderUnavailableError)
    assert error.code is ErrorCode.TIMEOUT


@pytest.mark.parametrize("kind", ["bad-gzip", "brotli"])
def test_undecodable_bodies_are_malformed(send, kind):
    assert error_of(send, kind).code is ErrorCode.MALFORMED_RESPONSE


@pytest.mark.parametrize("kind", ["deep", "deep-object"])
def test_json_nesting_beyond_the_limit_is_refused(send, kind):
    response = send(kind)
    with pytest.raises(PermanentProviderError) as info:
        parse_json_object("fake", response)
    assert info.value.code is ErrorCode.RESPONSE_TOO_DEEP


def test_redirects_are_not_followed(send):
    assert send("redirect").status == 302


def test_nothing_listening_is_a_connection_error(loop):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = AiohttpTransport(LIMITS)
    request = ProviderRequest("GET", f"http://127.0.0.1:{port}/x")
    with pytest.raises(ProviderUnavailableError) as info:
        loop.run(transport.send("fake", request), timeout=30)
    assert info.value.code is ErrorCode.CONNECTION_ERROR
    loop.run(transport.close())


def test_hundreds_of_calls_in_flight_share_one_session(loop, server):
    # The subject is sharing, not speed: a deadline that a shared 2-core CI host (other
    # xdist workers busy) cannot miss while 300 calls queue for the pool's connections.
    limits = dataclasses.replace(LIMITS, connect_timeout=30.0, read_timeout=30.0, deadline=45.0)
    transport = AiohttpTransport(limits)

    async def many() -> tuple[list[int], set[int]]:
        request = ProviderRequest("GET", f"{server}/ok")
        sessions: set[int] = set()

        async def one() -> int:
            sessions.add(id(transport._client()))
            answer = await transport.send("fake", request)
            sessions.add(id(transport._client()))
            return answer.status

        answers = await asyncio.gather(*(one() for _ in range(300)))
        return list(answers), sessions

    try:
        statuses, sessions = loop.run(many(), timeout=120)
        assert statuses == [200] * 300
        assert len(sessions) == 1
    finally:
        loop.run(transport.close())


def expired_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost that expired yesterday, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=2))
        .not_valid_after(now - timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_a_refused_provider_certificate_is_provider_wide(loop, tmp_path):
    # Every call to that provider fails alike: counted against the provider (the breaker),
    # never against the verification (else all of them end `failed`).
    cert_path, key_path = expired_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    app = web.Application()

    async def answer(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/x", answer)
    runner = web.AppRunner(app)

    async def start() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    port = loop.run(start())
    transport = AiohttpTransport(LIMITS)
    try:
        with pytest.raises(ProviderUnavailableError) as info:
            loop.run(
                transport.send("fake", ProviderRequest("GET", f"https://localhost:{port}/x")),
                timeout=30,
            )
        assert info.value.code is ErrorCode.CONNECTION_ERROR
        assert info.value.provider_wide and not info.value.permanent
    finally:
        loop.run(transport.close())
        loop.run(runner.cleanup())


def test_a_wait_that_ends_first_cancels_the_calls(loop):
    cancelled = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError):
        loop.run(slow(), timeout=0.1)
    assert cancelled.wait(5)  # not left running for a caller that is gone
