"""Hints in, polls out: the HTTP service's use cases, between the routes and the poll-now path.

- `WebhookGate`: per signed webhook, ONE Redis round trip (a Lua script) that applies the
  provider's fleet-wide webhook rate (GCRA, as the governor's) and then refuses an exact
  replay (the same signature seen within the replay window). Fleet-wide: every replica
  of the service shares the bucket, so scaling out does not raise the limit.
- `HintBuffer`: accepted hints wait here until a batch is full (`flush_at`, the hint batch
  size) or for at most `interval_seconds` (200 ms), then go out as one `poll_now_many` per
  provider (one lookup, one claim, `kyc.poll_batch` tasks of up to the hint batch size).
  At 500 webhooks/s that is 5 tasks/s of 100 ids instead of 500 tasks/s of one: a poll
  task's fixed cost (its transaction, its relay) is what limits the workers there.
  Bounded: at most `max_pending` ids wait; beyond that the webhook is answered 503 so the
  provider retries later. Hints waiting in a process that dies are lost; that is
  accepted, because the poll schedule finds every change anyway (a hint only makes it
  sooner).
- `HintFlusher.flush`: the synchronous part (database, Redis, broker), run off the event
  loop: the poll-now path, the opt-in tracking of unknown ids, and `record_hints`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime

import redis
import structlog
from redis import asyncio as aioredis

from models.db import Database
from worker.domain.errors import RequestRejected
from worker.services.hints import DEFAULT_HINT_TTL_SECONDS, record_hints
from worker.services.operations import Nudge, NudgeOutcome, PollNotEnqueued, poll_now_many
from worker.services.ports import PollQueue
from worker.services.tracking import track_verification

log = structlog.get_logger(__name__)

GATE_KEY_PREFIX = "kyc-poller:webhook:"

# KEYS: GCRA tat key, replay key ("" when none). ARGV: now ms, interval ms (0: no limit),
# tolerance ms, replay ttl ms. Returns "ok", "rate_limited" or "replayed". A request the
# rate refuses is not remembered: the provider's retry of it is not a replay.
_GATE = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
if interval > 0 then
  local tolerance = tonumber(ARGV[3])
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat < now then tat = now end
  local new_tat = tat + interval
  if new_tat - now > tolerance then return 'rate_limited' end
  redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
end
if KEYS[2] ~= '' then
  if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[4]) then return 'replayed' end
end
return 'ok'
"""


@dataclass(frozen=True)
class WebhookRate:
    per_second: float = 1000.0  # 0: no limit
    burst: int = 2000


class WebhookGate:
    """Fleet-wide webhook rate and replay refusal, one async Redis call per webhook."""

    def __init__(
        self,
        client: aioredis.Redis,
        rate: WebhookRate,
        *,
        replay_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.rate = rate
        self.replay_ms = max(int(replay_seconds * 1000), 1000)
        self.clock = clock
        self._script = client.register_script(_GATE)

    async def admit(self, provider: str, signature_digest: str | None) -> str:
        """ok | rate_limited | replayed (`signature_digest` None: no replay check)."""
        interval = 1000.0 / self.rate.per_second if self.rate.per_second > 0 else 0.0
        replay_key = "" if signature_digest is None else f"{GATE_KEY_PREFIX}{provider}:seen:"
        result = await self._script(
            keys=[f"{GATE_KEY_PREFIX}{provider}:tat", replay_key + (signature_digest or "")],
            args=[
                f"{self.clock() * 1000:.3f}",
                f"{interval:.6f}",
                f"{interval * max(self.rate.burst, 1):.6f}",
                self.replay_ms,
            ],
        )
        return result.decode() if isinstance(result, bytes) else str(result)


# --------------------------------------------------------------------------- flushing


@dataclass
class FlushReport:
    """What one flush did: counts by (source, outcome), and how long it took."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    seconds: float = 0.0


class HintFlusher:
    """The synchronous flush: the one poll-now path for a provider's buffered ids."""

    def __init__(
        self,
        db: Database,
        client: redis.Redis,
        queue: PollQueue,
        *,
        lease_seconds: float,
        collapse_seconds: float,
        batch_size: int,
        track_unknown: frozenset[str] = frozenset(),
        hint_ttl_seconds: int = DEFAULT_HINT_TTL_SECONDS,
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.redis = client
        self.queue = queue
        self.lease_seconds = lease_seconds
        self.collapse_seconds = collapse_seconds
        self.batch_size = batch_size
        self.track_unknown = track_unknown
        self.hint_ttl_seconds = hint_ttl_seconds
        self.clock = clock

    def flush(self, provider: str, hints: Mapping[str, str]) -> FlushReport:
        """Poll now every id in `hints` (id -> source); never raises (outcomes are counted)."""
        started = time.perf_counter()
        report = FlushReport()
        try:
            self._flush(provider, hints, report)
        except Exception as exc:  # the database or Redis is down: the schedule has them
            for source in hints.values():
                report.counts[(source, "failed")] += 1
            log.warning("hint_flush_failed", provider=provider, error=type(exc).__name__)
        report.seconds = time.perf_counter() - started
        return report

    def _flush(self, provider: str, hints: Mapping[str, str], report: FlushReport) -> None:
        now = self.clock()
        nudges = self._nudge(provider, list(hints), now, report, hints)
        if provider in self.track_unknown:
            unknown = [eid for eid, n in nudges.items() if n.outcome is NudgeOutcome.UNKNOWN]
            tracked = self._track(provider, unknown, now)
            for external_id in tracked:
                report.counts[(hints.get(external_id, "webhook"), "tracked")] += 1
            if tracked:
                nudges.update(self._nudge(provider, tracked, now, None, hints))
        for external_id, nudge in nudges.items():
            report.counts[(hints.get(external_id, "webhook"), str(nudge.outcome))] += 1
        accepted = [
            nudge.verification_id
            for nudge in nudges.values()
            if nudge.verification_id is not None
            and nudge.outcome in (NudgeOutcome.SCHEDULED, NudgeOutcome.COLLAPSED)
        ]
        try:
            record_hints(self.redis, provider, accepted, now, ttl_seconds=self.hint_ttl_seconds)
        except redis.RedisError as exc:
            log.warning("hints_not_recorded", provider=provider, error=type(exc).__name__)

    def _nudge(
        self,
        provider: str,
        external_ids: Sequence[str],
        now: datetime,
        report: FlushReport | None,
        hints: Mapping[str, str],
    ) -> dict[str, Nudge]:
        try:
            return poll_now_many(
                self.db,
                self.redis,
                self.queue,
                provider,
                external_ids,
                now=now,
                lease_seconds=self.lease_seconds,
                window_seconds=self.collapse_seconds,
                batch_size=self.batch_size,
            )
        except PollNotEnqueued as exc:
            # Claimed, but the broker refused: their leases run out and the sweep polls them.
            log.warning(
                "hint_polls_not_enqueued",
                provider=provider,
                count=len(exc.verification_ids),
                error=type(exc.cause).__name__,
            )
            if report is not None:
                source = next(iter(hints.values()), "webhook")
                report.counts[(source, "not_enqueued")] += len(exc.verification_ids)
            return {}

    def _track(self, provider: str, external_ids: Sequence[str], now: datetime) -> list[str]:
        """Opt-in: start tracking ids a signed webhook named, through the tracking service."""
        tracked: list[str] = []
        for external_id in external_ids:
            try:
                result = track_verification(self.db, provider, external_id, now=now)
            except RequestRejected:
                continue  # an id the provider cannot have: stays unknown
            if result.created:
                log.info(
                    "verification_tracked_from_hint",
                    provider=provider,
                    verification_id=result.verification_id,
                )
            tracked.append(external_id)
        return tracked


class HintBuffer:
    """Accepted hints, flushed every `interval_seconds` (or sooner when `flush_at` wait)."""

    def __init__(
        self,
        flusher: Callable[[str, Mapping[str, str]], FlushReport],
        executor: Executor,
        *,
        interval_seconds: float = 0.2,
        max_pending: int = 10_000,
        flush_at: int = 250,
        on_flush: Callable[[str, FlushReport], None] | None = None,
    ) -> None:
        self.flusher = flusher
        self.executor = executor
        self.interval_seconds = interval_seconds
        self.max_pending = max_pending
        self.flush_at = flush_at
        self.on_flush = on_flush
        self._pending: dict[str, dict[str, str]] = {}
        self._count = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return self._count

    def offer(self, provider: str, external_ids: Sequence[str], source: str) -> bool:
        """Queue ids for the next flush; False (nothing queued) when the buffer is full."""
        if self._count + len(external_ids) > self.max_pending:
            return False
        bucket = self._pending.setdefault(provider, {})
        for external_id in external_ids:
            if external_id not in bucket:
                bucket[external_id] = source
                self._count += 1
        if self._count >= self.flush_at:
            self._wake.set()
        return True

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Flush what waits, then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush_once()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_seconds)
            self._wake.clear()
            await self.flush_once()

    async def flush_once(self) -> None:
        pending, self._pending, self._count = self._pending, {}, 0
        loop = asyncio.get_running_loop()
        for provider, hints in pending.items():
            report = await loop.run_in_executor(self.executor, self.flusher, provider, hints)
            if self.on_flush is not None:
                self.on_flush(provider, report)
