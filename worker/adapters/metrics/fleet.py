"""Beat's fleet-wide gauges: the database's and the governor's state, read when scraped.

Beat (exactly one) serves them: verifications by status, the due backlog, the
outbox, event latency, and each provider's circuit, pause and rate. A few indexed
queries, cached for `KYC_METRICS_CACHE_SECONDS` so scrapes cannot hammer the database.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from models import OutboxEvent, Verification, utcnow
from models.db import Database
from worker.adapters.metrics.specs import (
    CIRCUIT_STATE,
    CIRCUIT_WINDOW_FAULTS,
    DUE,
    DUE_OLDEST_AGE,
    EVENT_LATENCY,
    FLEET_REFRESH_DURATION,
    FLEET_REFRESH_ERRORS,
    FLEET_REFRESH_TIMESTAMP,
    HINTED_TRANSITION_SHARE,
    OUTBOX_OLDEST_AGE,
    OUTBOX_UNPUBLISHED,
    PROVIDER_OPERATOR_PAUSED,
    PROVIDER_PAUSE_REMAINING,
    PROVIDER_RATE_LIMIT,
    SAFETY_NET_STRETCHED,
    VERIFICATIONS,
    MetricSpec,
    provider_label,
)
from worker.adapters.registry import PROVIDER_NAMES
from worker.domain.safety_net import NetState
from worker.domain.statuses import VerificationStatus
from worker.services.governor import CircuitState, ProviderGovernor, ProviderStatus
from worker.services.safety_net import HintedSafetyNet

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DatabaseState:
    verifications: dict[tuple[str, str], int]
    due: dict[str, int]
    due_oldest_age: dict[str, float]
    outbox_unpublished: int
    outbox_oldest_age: float


@dataclass(frozen=True)
class FleetSnapshot:
    """One read of the fleet's state; a part is None when its source could not be read."""

    database: DatabaseState | None
    providers: dict[str, ProviderStatus] | None
    taken_at: float  # Unix time
    duration: float
    monotonic: float = field(default=0.0, repr=False)
    safety_net: dict[str, NetState] | None = None


class FleetCollector:
    """Fleet-wide gauges read when scraped, reused for `cache_seconds` (a custom collector).

    The queries use the indexes the fleet already has: (provider, next_poll_at) for
    the due backlog and (published_at, id) for the outbox; counting verifications by
    status is the one full read, hence the cache. Event latency is taken from the
    outbox rows published since the collector started (`created_at` is written with
    the transition, `published_at` by the relay), a few seconds behind so that rows
    still being marked are not skipped.
    """

    def __init__(
        self,
        db: Database,
        governor: ProviderGovernor | None,
        providers: Sequence[str] = PROVIDER_NAMES,
        *,
        cache_seconds: float = 15.0,
        query_timeout_seconds: float = 5.0,
        settle_seconds: float = 2.0,
        max_latency_rows: int = 10_000,
        clock: Callable[[], datetime] = utcnow,
        safety_net: HintedSafetyNet | None = None,
    ) -> None:
        self.db = db
        self.safety_net = safety_net
        self.governor = governor
        self.providers = tuple(providers)
        self.cache_seconds = cache_seconds
        self.query_timeout_seconds = query_timeout_seconds
        self.settle_seconds = settle_seconds
        self.max_latency_rows = max_latency_rows
        self.clock = clock
        self._lock = threading.RLock()  # concurrent scrapes: one reads, the others reuse it
        self._snapshot: FleetSnapshot | None = None
        # Event latency: keyset cursor (published_at, id) and the histogram's state.
        self._cursor: tuple[datetime, int] = (clock(), 0)
        self._latency_buckets = [0] * len(EVENT_LATENCY.buckets)
        self._latency_count = 0
        self._latency_sum = 0.0
        self._errors = {"database": 0, "redis": 0}

    # prometheus_client's Collector protocol (describe: names without reading anything).
    def describe(self) -> list[Metric]:
        return self._families(None)

    def collect(self) -> list[Metric]:
        with self._lock:
            return self._families(self.snapshot())

    def snapshot(self) -> FleetSnapshot:
        """The cached read, or a fresh one once it is `cache_seconds` old."""
        with self._lock:
            current = self._snapshot
            if current is None or time.monotonic() - current.monotonic >= self.cache_seconds:
                current = self._snapshot = self._refresh()
            return current

    def _refresh(self) -> FleetSnapshot:
        started = time.perf_counter()
        database: DatabaseState | None = None
        try:
            database = self._read_database(self.clock())
        except Exception as exc:  # a scrape must answer, whatever the database does
            self._errors["database"] += 1
            log.warning("fleet_metrics_database_failed", error=_error_text(exc))
        providers: dict[str, ProviderStatus] | None = None
        if self.governor is not None:
            try:
                providers = {name: self.governor.status(name) for name in self.providers}
            except Exception as exc:
                self._errors["redis"] += 1
                log.warning("fleet_metrics_redis_failed", error=_error_text(exc))
        safety_net: dict[str, NetState] | None = None
        if self.safety_net is not None:
            try:
                safety_net = self.safety_net.peek()
            except Exception as exc:
                self._errors["redis"] += 1
                log.warning("fleet_metrics_redis_failed", error=_error_text(exc))
        return FleetSnapshot(
            database=database,
            providers=providers,
            safety_net=safety_net,
            taken_at=time.time(),
            duration=time.perf_counter() - started,
            monotonic=time.monotonic(),
        )

    def _read_database(self, now: datetime) -> DatabaseState:
        with self.db.session() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                timeout = f"{max(1, int(self.query_timeout_seconds * 1000))}ms"
                session.execute(select(func.set_config("statement_timeout", timeout, True)))
            verifications: dict[tuple[str, str], int] = {}
            by_status = select(Verification.provider, Verification.status, func.count()).group_by(
                Verification.provider, Verification.status
            )
            for provider, status, count in session.execute(by_status):
                key = (provider_label(provider), str(status))
                verifications[key] = verifications.get(key, 0) + int(count)
            due: dict[str, int] = {}
            due_oldest_age: dict[str, float] = {}
            for provider in self.providers:
                waiting = Verification.provider == provider
                due[provider] = int(
                    session.scalar(
                        select(func.count())
                        .select_from(Verification)
                        .where(waiting, Verification.next_poll_at <= now)
                    )
                    or 0
                )
                oldest = session.scalar(
                    select(func.min(Verification.next_poll_at)).where(
                        waiting, Verification.next_poll_at.is_not(None)
                    )
                )
                due_oldest_age[provider] = _age(now, oldest)
            unpublished = int(
                session.scalar(
                    select(func.count())
                    .select_from(OutboxEvent)
                    .where(OutboxEvent.published_at.is_(None))
                )
                or 0
            )
            oldest_event = session.scalar(
                select(OutboxEvent.created_at)
                .where(OutboxEvent.published_at.is_(None))
                .order_by(OutboxEvent.id)
                .limit(1)
            )
            self._read_latencies(session, now)
        return DatabaseState(
            verifications=verifications,
            due=due,
            due_oldest_age=due_oldest_age,
            outbox_unpublished=unpublished,
            outbox_oldest_age=_age(now, oldest_event),
        )

    def _read_latencies(self, session: Session, now: datetime) -> None:
        """Count the latency of events published since the last read (keyset on the index)."""
        published_at, outbox_id = OutboxEvent.published_at, OutboxEvent.id
        rows = session.execute(
            select(outbox_id, OutboxEvent.created_at, published_at)
            .where(
                published_at.is_not(None),
                or_(
                    published_at > self._cursor[0],
                    and_(published_at == self._cursor[0], outbox_id > self._cursor[1]),
                ),
                published_at <= now - _seconds(self.settle_seconds),
            )
            .order_by(published_at, outbox_id)
            .limit(self.max_latency_rows)
        ).all()
        for row_id, created_at, published in rows:
            latency = max((published - created_at).total_seconds(), 0.0)
            index = bisect.bisect_left(EVENT_LATENCY.buckets, latency)
            if index < len(self._latency_buckets):
                self._latency_buckets[index] += 1
            self._latency_count += 1
            self._latency_sum += latency
            self._cursor = (published, row_id)

    def _families(self, snapshot: FleetSnapshot | None) -> list[Metric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        def gauge(spec: MetricSpec) -> GaugeMetricFamily:
            return GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)

        verifications, due, due_age = gauge(VERIFICATIONS), gauge(DUE), gauge(DUE_OLDEST_AGE)
        unpublished, unpublished_age = gauge(OUTBOX_UNPUBLISHED), gauge(OUTBOX_OLDEST_AGE)
        circuit, faults = gauge(CIRCUIT_STATE), gauge(CIRCUIT_WINDOW_FAULTS)
        pause, operator, rate = (
            gauge(PROVIDER_PAUSE_REMAINING),
            gauge(PROVIDER_OPERATOR_PAUSED),
            gauge(PROVIDER_RATE_LIMIT),
        )
        stretched, hinted_share = gauge(SAFETY_NET_STRETCHED), gauge(HINTED_TRANSITION_SHARE)
        duration, taken = gauge(FLEET_REFRESH_DURATION), gauge(FLEET_REFRESH_TIMESTAMP)
        errors = CounterMetricFamily(
            FLEET_REFRESH_ERRORS.family,
            FLEET_REFRESH_ERRORS.help,
            labels=FLEET_REFRESH_ERRORS.labels,
        )
        latency = HistogramMetricFamily(EVENT_LATENCY.name, EVENT_LATENCY.help)
        families: list[Metric] = [
            verifications,
            due,
            due_age,
            unpublished,
            unpublished_age,
            latency,
            circuit,
            faults,
            pause,
            operator,
            rate,
            stretched,
            hinted_share,
            duration,
            taken,
            errors,
        ]
        if snapshot is None:
            return families

        if (state := snapshot.database) is not None:
            providers = sorted({*self.providers, *(p for p, _ in state.verifications)})
            for provider in providers:
                for status in VerificationStatus:
                    count = state.verifications.get((provider, status.value), 0)
                    verifications.add_metric([provider, status.value], count)
            for provider in self.providers:
                due.add_metric([provider], state.due.get(provider, 0))
                due_age.add_metric([provider], state.due_oldest_age.get(provider, 0.0))
            unpublished.add_metric([], state.outbox_unpublished)
            unpublished_age.add_metric([], state.outbox_oldest_age)
        cumulative, running = [], 0
        for bound, count in zip(EVENT_LATENCY.buckets, self._latency_buckets, strict=True):
            running += count
            cumulative.append((_bucket_label(bound), float(running)))
        cumulative.append(("+Inf", float(self._latency_count)))
        latency.add_metric([], cumulative, self._latency_sum)
        for name, provider_status in sorted((snapshot.providers or {}).items()):
            for circuit_state in CircuitState:
                is_current = int(provider_status.state is circuit_state)
                circuit.add_metric([name, circuit_state.value], is_current)
            faults.add_metric([name], provider_status.window_faults)
            pause.add_metric([name], provider_status.paused_for_seconds)
            operator.add_metric([name], int(provider_status.paused_by_operator))
            rate.add_metric([name], provider_status.rate.per_second)
        for name, net in sorted((snapshot.safety_net or {}).items()):
            stretched.add_metric([name], int(net.stretched))
            hinted_share.add_metric([name], net.share)
        duration.add_metric([], snapshot.duration)
        taken.add_metric([], snapshot.taken_at)
        for source, count in sorted(self._errors.items()):
            errors.add_metric([source], count)
        return families


def _error_text(exc: Exception) -> str:
    """One line: the driver's own error when SQLAlchemy wraps one (no SQL, no boilerplate)."""
    cause = getattr(exc, "orig", None)
    shown = cause if isinstance(cause, Exception) else exc
    lines = str(shown).strip().splitlines()
    return f"{type(shown).__name__}: {lines[0] if lines else ''}"


def _age(now: datetime, since: datetime | None) -> float:
    if since is None:
        return 0.0
    return max((now - since).total_seconds(), 0.0)


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def _bucket_label(bound: float) -> str:
    return repr(float(bound))  # as prometheus_client writes `le` for these bounds: "0.5", "1.0"
