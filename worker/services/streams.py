"""Provider status streams (Predicate's server-sent events) as hints, with polling as the net.

Predicate documents `GET /api/v1/status/realtime/{type}/{sessionId}` ("use SSE
(recommended) or polling"). A message on a session's stream is a hint like a webhook: it
nudges a poll through the one poll-now path (`offer` into the service's hint buffer);
its content is never read as a status.

Which process: the HTTP service. It already runs an event loop with aiohttp and the hint
buffer, and a stream is an idle connection; scaling the service out scales the streams.

Bounds and rules:
- only verifications in their first phase (`pending`, `in_progress`: the user has not
  finished), newest first, at most `max_streams` open per process;
- one stream per session fleet-wide: a lease in Redis (`kyc-poller:stream:<provider>:<id>`,
  renewed while the stream lives, released when it ends; a dead process's lease expires);
- each stream lives at most `max_stream_seconds`, then is reopened; no byte for
  `idle_seconds` means it is broken; a line longer than 64 KiB or an event above
  `max_event_bytes` breaks it too;
- a broken or refused stream is retried with backoff (doubling from `backoff_base_seconds`
  to `backoff_max_seconds`, per session); meanwhile the schedule polls the session as it
  would without streams: nothing is found later than polling alone finds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from redis import asyncio as aioredis
from sqlalchemy import select

from models import Verification
from models.db import Database
from worker.adapters.contract import ProviderAdapter

log = structlog.get_logger(__name__)

LEASE_PREFIX = "kyc-poller:stream:"
FIRST_PHASE = ("pending", "in_progress")

# KEYS: lease. ARGV: owner token, ttl ms (0: release). Renews/releases only one's own lease.
_LEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  redis.call('DEL', KEYS[1])
end
return 1
"""


@dataclass(frozen=True)
class StreamLimits:
    max_streams: int
    lease_seconds: float = 30.0
    max_stream_seconds: float = 600.0
    refresh_seconds: float = 5.0
    idle_seconds: float = 90.0
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 300.0
    max_event_bytes: int = 65536


class StreamManager:
    """Keeps up to `max_streams` status streams open for first-phase verifications."""

    def __init__(
        self,
        adapter: ProviderAdapter[Any],
        db: Database,
        client: aioredis.Redis,
        executor: Executor,
        offer: Callable[[str, Sequence[str], str], bool],
        limits: StreamLimits,
        *,
        on_event: Callable[[str], None] = lambda _result: None,
        on_open: Callable[[int], None] = lambda _count: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.adapter = adapter
        self.provider = adapter.name
        self.db = db
        self.redis = client
        self.executor = executor
        self.offer = offer
        self.limits = limits
        self.on_event = on_event
        self.on_open = on_open
        self.clock = clock
        self.owner = uuid.uuid4().hex
        self.open: dict[str, asyncio.Task[None]] = {}
        self.failures: dict[str, int] = {}
        self.retry_at: dict[str, float] = {}
        self._lease = client.register_script(_LEASE)
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self.open.values()):
            task.cancel()
        await asyncio.gather(*self.open.values(), return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=max(self.limits.max_streams, 1))
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # the database or Redis is down: try again next round
                log.warning("status_streams_refresh_failed", error=type(exc).__name__)
            await asyncio.sleep(self.limits.refresh_seconds)

    async def refresh(self) -> None:
        """Close streams of sessions that left their first phase; open streams for new ones."""
        wanted = await asyncio.get_running_loop().run_in_executor(self.executor, self._candidates)
        keep = {external_id for external_id, _ in wanted}
        for external_id, task in list(self.open.items()):
            if external_id not in keep:
                task.cancel()
        now = self.clock()
        for external_id, verification_type in wanted:
            if len(self.open) >= self.limits.max_streams:
                break
            if external_id in self.open or self.retry_at.get(external_id, 0.0) > now:
                continue
            if not await self.redis.set(
                self._key(external_id), self.owner, nx=True, px=self._lease_ms()
            ):
                self.on_event("leased_elsewhere")
                continue
            task = asyncio.get_running_loop().create_task(
                self._stream(external_id, verification_type)
            )
            self.open[external_id] = task
        self.on_open(len(self.open))

    def _candidates(self) -> list[tuple[str, str | None]]:
        """First-phase verifications of this provider, newest first (a bounded read)."""
        with self.db.session() as session:
            rows = session.execute(
                select(Verification.external_id, Verification.verification_type)
                .where(
                    Verification.provider == self.provider,
                    Verification.status.in_(FIRST_PHASE),
                )
                .order_by(Verification.created_at.desc())
                .limit(self.limits.max_streams * 4)
            ).all()
        return [(row.external_id, row.verification_type) for row in rows]

    def _key(self, external_id: str) -> str:
        return f"{LEASE_PREFIX}{self.provider}:{external_id}"

    def _lease_ms(self) -> int:
        return max(int(self.limits.lease_seconds * 1000), 1000)

    async def _stream(self, external_id: str, verification_type: str | None) -> None:
        result = "closed"
        try:
            await self._read(external_id, verification_type)
            self.failures.pop(external_id, None)
        except asyncio.CancelledError:
            result = "closed"
            raise
        except Exception as exc:
            result = "failed"
            count = self.failures.get(external_id, 0) + 1
            self.failures[external_id] = count
            wait = min(
                self.limits.backoff_base_seconds * 2 ** (count - 1),
                self.limits.backoff_max_seconds,
            )
            self.retry_at[external_id] = self.clock() + wait
            log.info(
                "status_stream_failed",
                provider=self.provider,
                error=type(exc).__name__,
                retry_in=round(wait, 1),
            )
        finally:
            self.open.pop(external_id, None)
            self.on_event(result)
            self.on_open(len(self.open))
            with contextlib.suppress(Exception):
                await self._lease(keys=[self._key(external_id)], args=[self.owner, 0])

    async def _read(self, external_id: str, verification_type: str | None) -> None:
        request = self.adapter.build_stream_request(external_id, verification_type)
        if request is None:
            raise RuntimeError("no status stream for this provider")
        timeout = aiohttp.ClientTimeout(
            total=self.limits.max_stream_seconds, sock_read=self.limits.idle_seconds
        )
        async with self._client().get(
            request.url, headers=dict(request.headers), timeout=timeout, allow_redirects=False
        ) as response:
            if response.status != 200:
                raise StreamRefused(response.status)
            self.on_event("opened")
            renew_at = self.clock() + self.limits.lease_seconds / 3
            size = 0
            has_data = False
            while True:
                try:
                    line = await response.content.readline()
                except aiohttp.ServerTimeoutError:
                    raise  # no byte for idle_seconds: broken
                except TimeoutError:
                    return  # its time limit: closed, reopened at the next refresh
                if not line:
                    return  # the provider ended it
                if self.clock() >= renew_at:
                    if not await self._lease(
                        keys=[self._key(external_id)], args=[self.owner, self._lease_ms()]
                    ):
                        return  # the lease was lost (Redis restarted): let another hold it
                    renew_at = self.clock() + self.limits.lease_seconds / 3
                size += len(line)
                if size > self.limits.max_event_bytes:
                    raise ValueError("status stream event too large")
                text = line.rstrip(b"\r\n")
                if text.startswith(b"data:"):
                    has_data = True
                elif not text:  # an event ends
                    if has_data:
                        self.on_event("message")
                        self.offer(self.provider, [external_id], "stream")
                    size = 0
                    has_data = False


class StreamRefused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"status stream answered HTTP {status}")
        self.status = status
