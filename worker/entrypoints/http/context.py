"""What one service process holds, built once at start (`Ingress.build`) and closed at stop."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis
import structlog
from redis import asyncio as aioredis

from models import utcnow
from models.db import Database
from worker.adapters.celery_queue import CeleryPollQueue
from worker.adapters.metrics.service import ServiceInstruments
from worker.config import Settings
from worker.entrypoints.http.settings import ServiceSettings
from worker.services.ingress import FlushReport, HintBuffer, HintFlusher, WebhookGate, WebhookRate
from worker.services.ports import PollQueue

if TYPE_CHECKING:
    from worker.services.streams import StreamManager

log = structlog.get_logger(__name__)

REVOKED_TOKENS_KEY = "kyc-poller:api-tokens:revoked"


@dataclass
class Ingress:
    settings: Settings
    service: ServiceSettings
    db: Database
    redis: redis.Redis
    aredis: aioredis.Redis
    queue: PollQueue
    metrics: ServiceInstruments
    flusher: HintFlusher
    # Flushes run one at a time on their own thread; API calls share a small pool.
    flush_executor: ThreadPoolExecutor
    executor: ThreadPoolExecutor
    gate: WebhookGate
    buffer: HintBuffer | None = None
    streams: StreamManager | None = None

    @classmethod
    def build(
        cls,
        settings: Settings,
        service: ServiceSettings,
        *,
        queue: PollQueue | None = None,
        db: Database | None = None,
    ) -> Ingress:
        client = redis.Redis.from_url(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=2
        )
        aclient = aioredis.Redis.from_url(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=2
        )
        poll_queue = queue or CeleryPollQueue(
            settings.effective_broker_url, expires_seconds=settings.claim_lease_seconds
        )
        database = db or Database(settings.database_url)
        flusher = HintFlusher(
            database,
            client,
            poll_queue,
            lease_seconds=settings.claim_lease_seconds,
            collapse_seconds=service.collapse_seconds,
            batch_size=service.hint_batch_size,
            track_unknown=service.track_unknown,
            hint_ttl_seconds=service.hint_ttl_seconds,
            clock=utcnow,
        )
        gate = WebhookGate(
            aclient,
            WebhookRate(service.webhook_rate, service.webhook_burst),
            replay_seconds=service.replay_window_seconds or 300.0,
        )
        return cls(
            settings=settings,
            service=service,
            db=database,
            redis=client,
            aredis=aclient,
            queue=poll_queue,
            metrics=ServiceInstruments.create(),
            flusher=flusher,
            flush_executor=ThreadPoolExecutor(1, thread_name_prefix="kyc-hints"),
            executor=ThreadPoolExecutor(8, thread_name_prefix="kyc-api"),
            gate=gate,
        )

    def count_flush(self, provider: str, report: FlushReport) -> None:
        self.metrics.hint_flush_duration.observe(report.seconds)
        for (source, outcome), count in report.counts.items():
            self.metrics.hints.labels(provider, source, outcome).inc(count)
        if self.buffer is not None:
            self.metrics.hints_buffered.set(self.buffer.pending)

    async def start(self) -> None:
        """Start the hint buffer (and the status streams when configured)."""
        self.buffer = HintBuffer(
            self.flusher.flush,
            self.flush_executor,
            interval_seconds=self.service.flush_interval_seconds,
            max_pending=self.service.max_pending_hints,
            # A full poll batch goes at once: fewer, fuller kyc.poll_batch tasks.
            flush_at=self.service.hint_batch_size,
            on_flush=self.count_flush,
        )
        self.buffer.start()
        if self.service.streams.max_streams > 0:
            self.streams = self._stream_manager()
            if self.streams is not None:
                self.streams.start()

    def _stream_manager(self) -> StreamManager | None:
        """Predicate's status streams, when Predicate is configured here."""
        from worker.adapters.registry import build_adapter
        from worker.domain.errors import ProviderConfigurationError
        from worker.services.streams import StreamLimits, StreamManager

        provider = "predicate"
        try:
            adapter = build_adapter(provider, self.settings.providers[provider])
        except (KeyError, ProviderConfigurationError):
            log.warning("status_streams_off", provider=provider, reason="not configured")
            return None
        limits = self.service.streams
        buffer = self.buffer
        assert buffer is not None

        def on_event(result: str) -> None:
            self.metrics.stream_events.labels(provider, result).inc()

        def on_open(count: int) -> None:
            self.metrics.streams_open.labels(provider).set(count)

        return StreamManager(
            adapter,
            self.db,
            self.aredis,
            self.executor,
            buffer.offer,
            StreamLimits(
                max_streams=limits.max_streams,
                lease_seconds=limits.lease_seconds,
                max_stream_seconds=limits.max_stream_seconds,
                refresh_seconds=limits.refresh_seconds,
                idle_seconds=limits.idle_seconds,
                backoff_base_seconds=limits.backoff_base_seconds,
                backoff_max_seconds=limits.backoff_max_seconds,
                max_event_bytes=limits.max_event_bytes,
            ),
            on_event=on_event,
            on_open=on_open,
        )

    async def stop(self) -> None:
        """Stop streams, flush what waits, close connections and pools."""
        if self.streams is not None:
            await self.streams.stop()
        if self.buffer is not None:
            await self.buffer.stop()
        await self.aredis.aclose()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._close_sync)

    def _close_sync(self) -> None:
        self.flush_executor.shutdown(wait=True)
        self.executor.shutdown(wait=True)
        close = getattr(self.queue, "close", None)
        if callable(close):
            close()
        self.redis.close()
        self.db.dispose()
