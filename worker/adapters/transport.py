"""The HTTP transport: sends provider requests with every bound in one place.

One aiohttp session per worker process keeps hundreds of calls in flight on one
event loop at a fraction of the CPU a thread per call costs (figures in the
README's benchmark section). Every answer is bounded here, so no adapter can
forget a bound:

- time: a connect timeout, a per-read timeout, and an overall deadline per call
  (a body that trickles one byte a second ends at the deadline);
- size: at most `max_response_bytes` read from the socket AND after
  decompression (we decompress ourselves with a hard output limit, so a 1 MB
  gzip body that unpacks to 1 GiB stops at the limit);
- redirects are not followed (custom auth headers would go wherever they point);
- the JSON nesting limit travels with the response (`max_json_depth`) and is
  enforced when an adapter parses the body.

Failures become ProviderErrors: timeouts and connection failures are provider-wide
(`ProviderUnavailableError`), an oversized or undecodable body is this poll's
(`PermanentProviderError`).
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import aiohttp
from yarl import URL

from worker.adapters.contract import (
    ProviderAdapter,
    ProviderRequest,
    ProviderResponse,
    TransportLimits,
)
from worker.domain.errors import (
    ErrorCode,
    PermanentProviderError,
    ProviderUnavailableError,
)

__all__ = ["AiohttpTransport", "TransportLimits", "fetch_once"]

USER_AGENT = "kyc-poller/0.2"
CHUNK_BYTES = 64 * 1024


class AiohttpTransport:
    """Sends requests on one pooled aiohttp session (created inside the running loop)."""

    def __init__(self, limits: TransportLimits | None = None) -> None:
        self.limits = limits or TransportLimits()
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.limits.max_connections,
                limit_per_host=self.limits.max_connections_per_host,
                ttl_dns_cache=300,
                keepalive_timeout=30,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                # No environment proxies or .netrc: provider traffic goes where configured.
                trust_env=False,
                headers={
                    "User-Agent": USER_AGENT,
                    "Accept": "application/json",
                    "Accept-Encoding": "gzip, deflate",
                },
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=self.limits.connect_timeout,
                    sock_read=self.limits.read_timeout,
                ),
            )
        return self._session

    async def send(self, provider: str, request: ProviderRequest) -> ProviderResponse:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(self.limits.deadline):
                async with self._client().request(
                    request.method,
                    # Sent exactly as built (adapters quote every path segment; a signature
                    # covers this path): yarl would otherwise re-normalize it (%3A -> :).
                    URL(request.url, encoded=True),
                    headers=dict(request.headers),
                    data=request.body if request.body or request.method != "GET" else None,
                    allow_redirects=False,
                ) as response:
                    body = await self._read_bounded(provider, response)
                    headers = {key.lower(): value for key, value in response.headers.items()}
                    return ProviderResponse(
                        response.status, headers, body, self.limits.max_json_depth
                    )
        except TimeoutError:
            elapsed = loop.time() - started
            raise ProviderUnavailableError(
                ErrorCode.TIMEOUT, f"no complete answer from {provider} within {elapsed:.1f}s"
            ) from None
        except aiohttp.ClientConnectorCertificateError:
            # The provider's certificate (expired, wrong host): every call fails alike, so it
            # is provider-wide, never a fault of the verification being polled.
            raise ProviderUnavailableError(
                ErrorCode.CONNECTION_ERROR, f"{provider}'s TLS certificate was refused"
            ) from None
        except aiohttp.InvalidURL as exc:
            raise PermanentProviderError(
                ErrorCode.REQUEST_FAILED,
                f"could not send a request to {provider} ({type(exc).__name__})",
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ProviderUnavailableError(
                ErrorCode.CONNECTION_ERROR, f"could not talk to {provider} ({type(exc).__name__})"
            ) from None

    async def _read_bounded(self, provider: str, response: aiohttp.ClientResponse) -> bytes:
        limit = self.limits.max_response_bytes
        declared = response.content_length
        if declared is not None and declared > limit:
            raise too_large(provider, limit, response.status)
        decoder = body_decoder(provider, response.headers.get("Content-Encoding"), response.status)
        raw = 0
        parts: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(CHUNK_BYTES):
            raw += len(chunk)
            if raw > limit:
                raise too_large(provider, limit, response.status)
            for piece in decoder.feed(chunk, limit - size):
                size += len(piece)
                if size > limit:
                    raise too_large(provider, limit, response.status)
                parts.append(piece)
        for piece in decoder.finish(limit - size):
            size += len(piece)
            if size > limit:
                raise too_large(provider, limit, response.status)
            parts.append(piece)
        return b"".join(parts)

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def too_large(provider: str, limit: int, status: int) -> PermanentProviderError:
    return PermanentProviderError(
        ErrorCode.RESPONSE_TOO_LARGE,
        f"{provider} answer is larger than {limit} bytes (after decompression)",
        http_status=status,
    )


class BodyDecoder:
    """Identity or zlib decoding that never produces more than asked for at once."""

    def __init__(self, decompressor: Any | None, provider: str, status: int) -> None:
        self._decompressor = decompressor
        self._provider = provider
        self._status = status

    def feed(self, chunk: bytes, room: int) -> list[bytes]:
        if self._decompressor is None:
            return [chunk]
        return self._drain(chunk, room)

    def finish(self, room: int) -> list[bytes]:
        if self._decompressor is None:
            return []
        pieces = self._drain(b"", room)
        if not self._decompressor.eof and not pieces:
            raise self._undecodable()
        return pieces

    def _drain(self, data: bytes, room: int) -> list[bytes]:
        """Decompress `data` in steps of at most room+1 bytes: the caller sees an overflow."""
        decompressor = self._decompressor
        assert decompressor is not None
        pieces: list[bytes] = []
        produced = 0
        try:
            piece = decompressor.decompress(data, max(room, 0) + 1)
            while True:
                produced += len(piece)
                if piece:
                    pieces.append(piece)
                if produced > room or not decompressor.unconsumed_tail:
                    return pieces
                piece = decompressor.decompress(decompressor.unconsumed_tail, room - produced + 1)
        except zlib.error:
            raise self._undecodable() from None

    def _undecodable(self) -> PermanentProviderError:
        return PermanentProviderError(
            ErrorCode.MALFORMED_RESPONSE,
            f"{self._provider} answered with a body that does not decompress",
            http_status=self._status,
        )


def body_decoder(provider: str, encoding: str | None, status: int) -> BodyDecoder:
    word = (encoding or "identity").strip().lower()
    if word in ("identity", ""):
        return BodyDecoder(None, provider, status)
    if word in ("gzip", "x-gzip"):
        return BodyDecoder(zlib.decompressobj(16 + zlib.MAX_WBITS), provider, status)
    if word == "deflate":
        # zlib-wrapped per the RFC; most servers send that (raw deflate is not accepted).
        return BodyDecoder(zlib.decompressobj(zlib.MAX_WBITS), provider, status)
    raise PermanentProviderError(
        ErrorCode.MALFORMED_RESPONSE,
        f"{provider} answered with a content encoding kyc-poller did not ask for",
        http_status=status,
    )


async def fetch_once(
    adapter: ProviderAdapter[Any],
    external_id: str,
    verification_type: str | None,
    limits: TransportLimits | None = None,
) -> Any:
    """One status check on a short-lived transport (the CLI, tests); returns a PollResult."""
    transport = AiohttpTransport(limits)
    try:
        return await adapter.fetch_status(transport, external_id, verification_type)
    finally:
        await transport.close()
