"""Prometheus metrics: what every poll worker, control worker and beat serves.

Names follow the Prometheus conventions (`kyc_poller_` prefix, counters end in
`_total`, durations in `_seconds`); labels are bounded vocabularies only:
provider names, statuses, outcomes and error codes, never ids. Celery's own task
and queue metrics are left to celery-exporter / Flower, whose `celery_*` and
`flower_*` names these do not collide with.

Where they come from:

- **poll workers**: the engine's observer (`PrometheusObserver`) counts polls,
  provider calls and their latency, transitions, deferrals and detection delay;
  the tasks count tracking requests and published events. Celery's prefork
  children write into per-process files (prometheus_client's multiprocess mode);
  the worker's main process merges and serves them.
- **beat** (exactly one): `FleetCollector` reads the fleet's state when scraped:
  verifications by status, the due backlog, the outbox, event latency, and each
  provider's circuit, pause and rate from the governor. A few indexed queries,
  cached for `KYC_METRICS_CACHE_SECONDS` so scrapes cannot hammer the database.
- every process serves `/metrics` on `KYC_METRICS_PORT` (0: off).

prometheus_client chooses multiprocess mode when it is imported (from
PROMETHEUS_MULTIPROC_DIR), so this module imports it only inside functions:
a worker sets its directory (`prepare_process_metrics`) at start, before its
pool forks and before anything is counted.
"""

from __future__ import annotations

import atexit
import bisect
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from models import OutboxEvent, Verification, utcnow
from models.db import Database
from worker.adapters.registry import PROVIDER_NAMES
from worker.domain.decisions import Decision, Outcome
from worker.domain.errors import TransitionReason
from worker.domain.statuses import VerificationStatus
from worker.services.governor import CircuitState, ProviderGovernor, ProviderStatus

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client import CollectorRegistry, Counter, Histogram
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector

    from worker.config import Settings

log = structlog.get_logger(__name__)

DEFAULT_METRICS_PORT = 9808
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Label value for anything outside a bounded vocabulary (an unknown provider name
# in a rejected tracking request, say): labels never carry arbitrary input.
OTHER = "other"

RELAY_AFTER_POLL = "after_poll"
RELAY_BEAT = "beat"

TRACKING_RESULTS = ("created", "existing", "rejected", "retried")
DEFERRAL_REASONS = ("circuit_open", "paused", "operator_paused", "rate_limited")

CALL_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)
# Up to a day: polls of a verification waiting for a review are hours apart.
DETECTION_BUCKETS: tuple[float, ...] = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 21600, 86400)
EVENT_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass(frozen=True)
class MetricSpec:
    """One exported metric: its name as PromQL sees it, type, labels and meaning."""

    name: str
    kind: str  # counter | gauge | histogram
    labels: tuple[str, ...]
    help: str
    buckets: tuple[float, ...] = ()

    @property
    def family(self) -> str:
        """The name prometheus_client registers (a counter's without `_total`)."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name

    @property
    def series_names(self) -> frozenset[str]:
        """Every sample name PromQL can select for this metric."""
        if self.kind == "histogram":
            return frozenset(self.name + suffix for suffix in ("_bucket", "_count", "_sum"))
        return frozenset({self.name})


# -- the poll workers' metrics (the engine's observer and the tasks) ----------------------

POLLS = MetricSpec(
    "kyc_poller_polls_total",
    "counter",
    ("provider", "outcome", "error_code"),
    "Poll decisions committed, by outcome (unchanged, transition, error, deferred) and error "
    'code ("" when none; deferred: circuit_open, rate_limited, provider_paused).',
)
PROVIDER_CALLS = MetricSpec(
    "kyc_poller_provider_calls_total",
    "counter",
    ("provider", "result"),
    "Provider status calls, by result: answered, or the error code.",
)
PROVIDER_CALL_DURATION = MetricSpec(
    "kyc_poller_provider_call_duration_seconds",
    "histogram",
    ("provider",),
    "Provider status call latency, whatever the result.",
    CALL_BUCKETS,
)
TRANSITIONS = MetricSpec(
    "kyc_poller_transitions_total",
    "counter",
    ("provider", "to_status", "reason"),
    "Status transitions committed, by new status and reason "
    "(provider, provider_error, timed_out, operator_retry).",
)
POLLS_DEFERRED = MetricSpec(
    "kyc_poller_polls_deferred_total",
    "counter",
    ("provider", "reason"),
    "Due verifications not polled: circuit_open, paused (the provider asked to wait), "
    "operator_paused, rate_limited (the fleet-wide rate limit made them wait).",
)
CIRCUIT_CHANGES = MetricSpec(
    "kyc_poller_circuit_changes_total",
    "counter",
    ("provider", "state"),
    "Circuit breaker state changes seen by this worker, by new state.",
)
DETECTION_DELAY = MetricSpec(
    "kyc_poller_detection_delay_seconds",
    "histogram",
    ("provider",),
    "From the provider's own time of a status change (Predicate completedAt, Notus updatedAt) "
    "to the poll that committed it; only answers that carry such a time.",
    DETECTION_BUCKETS,
)
DETECTION_DELAY_UPPER_BOUND = MetricSpec(
    "kyc_poller_detection_delay_upper_bound_seconds",
    "histogram",
    ("provider",),
    "Upper bound of the detection delay: from an earlier poll of the verification by the same "
    "worker process to the poll that saw its status change.",
    DETECTION_BUCKETS,
)
TRACKING_REQUESTS = MetricSpec(
    "kyc_poller_tracking_requests_total",
    "counter",
    ("provider", "result"),
    "kyc.track_verification requests: created, existing (already tracked), rejected "
    "(bad input), retried (database unavailable).",
)
EVENTS_PUBLISHED = MetricSpec(
    "kyc_poller_events_published_total",
    "counter",
    ("relay",),
    "Events published to Redis, by relay: after_poll (right after the poll's commit) or beat "
    "(kyc.relay_outbox).",
)
EVENT_PUBLISH_FAILURES = MetricSpec(
    "kyc_poller_event_publish_failures_total",
    "counter",
    ("relay",),
    "Relay rounds that stopped on an error (Redis or the database); the outbox keeps the events.",
)

WORKER_METRICS = (
    POLLS,
    PROVIDER_CALLS,
    PROVIDER_CALL_DURATION,
    TRANSITIONS,
    POLLS_DEFERRED,
    CIRCUIT_CHANGES,
    DETECTION_DELAY,
    DETECTION_DELAY_UPPER_BOUND,
    TRACKING_REQUESTS,
    EVENTS_PUBLISHED,
    EVENT_PUBLISH_FAILURES,
)

# -- beat's fleet-wide metrics (FleetCollector) ------------------------------------------

VERIFICATIONS = MetricSpec(
    "kyc_poller_verifications",
    "gauge",
    ("provider", "status"),
    "Verifications by provider and status.",
)
DUE = MetricSpec(
    "kyc_poller_due_verifications",
    "gauge",
    ("provider",),
    "Verifications due for a poll and not yet claimed by a sweep (the backlog).",
)
DUE_OLDEST_AGE = MetricSpec(
    "kyc_poller_due_oldest_age_seconds",
    "gauge",
    ("provider",),
    "How long the longest-waiting due verification has been due (0: none due).",
)
OUTBOX_UNPUBLISHED = MetricSpec(
    "kyc_poller_outbox_unpublished_events",
    "gauge",
    (),
    "Committed events not yet published to Redis.",
)
OUTBOX_OLDEST_AGE = MetricSpec(
    "kyc_poller_outbox_oldest_unpublished_age_seconds",
    "gauge",
    (),
    "Age of the oldest unpublished event (0: none waiting).",
)
EVENT_LATENCY = MetricSpec(
    "kyc_poller_event_publish_latency_seconds",
    "histogram",
    (),
    "From an event's commit (its outbox row) to its publication, for events published since "
    "beat started.",
    EVENT_LATENCY_BUCKETS,
)
CIRCUIT_STATE = MetricSpec(
    "kyc_poller_circuit_state",
    "gauge",
    ("provider", "state"),
    "Each provider's circuit breaker: 1 for its current state (closed, open, half_open), else 0.",
)
CIRCUIT_WINDOW_FAULTS = MetricSpec(
    "kyc_poller_circuit_window_faults",
    "gauge",
    ("provider",),
    "Provider-wide faults counted in the breaker's current window.",
)
PROVIDER_PAUSE_REMAINING = MetricSpec(
    "kyc_poller_provider_pause_remaining_seconds",
    "gauge",
    ("provider",),
    "How long the provider's Retry-After pause still runs (0: not paused).",
)
PROVIDER_OPERATOR_PAUSED = MetricSpec(
    "kyc_poller_provider_operator_paused",
    "gauge",
    ("provider",),
    "1 while an operator has paused the provider (kyc-poller pause).",
)
PROVIDER_RATE_LIMIT = MetricSpec(
    "kyc_poller_provider_rate_limit_requests_per_second",
    "gauge",
    ("provider",),
    "The provider's configured fleet-wide rate limit (0: none).",
)
FLEET_REFRESH_DURATION = MetricSpec(
    "kyc_poller_fleet_refresh_duration_seconds",
    "gauge",
    (),
    "How long beat's last read of the fleet's state took (database and Redis).",
)
FLEET_REFRESH_TIMESTAMP = MetricSpec(
    "kyc_poller_fleet_refresh_timestamp_seconds",
    "gauge",
    (),
    "When beat last read the fleet's state (Unix time): the fleet gauges are this old.",
)
FLEET_REFRESH_ERRORS = MetricSpec(
    "kyc_poller_fleet_refresh_errors_total",
    "counter",
    ("source",),
    "Reads of the fleet's state that failed, by source (database, redis).",
)

FLEET_METRICS = (
    VERIFICATIONS,
    DUE,
    DUE_OLDEST_AGE,
    OUTBOX_UNPUBLISHED,
    OUTBOX_OLDEST_AGE,
    EVENT_LATENCY,
    CIRCUIT_STATE,
    CIRCUIT_WINDOW_FAULTS,
    PROVIDER_PAUSE_REMAINING,
    PROVIDER_OPERATOR_PAUSED,
    PROVIDER_RATE_LIMIT,
    FLEET_REFRESH_DURATION,
    FLEET_REFRESH_TIMESTAMP,
    FLEET_REFRESH_ERRORS,
)

ALL_METRICS = WORKER_METRICS + FLEET_METRICS


def provider_label(name: object) -> str:
    """A provider name as a label value: a known provider, else `other`."""
    return name if isinstance(name, str) and name in PROVIDER_NAMES else OTHER


def _bounded(value: str, vocabulary: Iterable[str]) -> str:
    return value if value in vocabulary else OTHER


# -- the instruments the poll workers count into ------------------------------------------


@dataclass(frozen=True)
class Instruments:
    """The worker-side metric objects (one set per registry)."""

    polls: Counter
    provider_calls: Counter
    provider_call_duration: Histogram
    transitions: Counter
    polls_deferred: Counter
    circuit_changes: Counter
    detection_delay: Histogram
    detection_delay_upper_bound: Histogram
    tracking_requests: Counter
    events_published: Counter
    event_publish_failures: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Instruments:
        """Build them in `registry` (default: prometheus_client's global registry)."""
        from prometheus_client import REGISTRY, Counter, Histogram

        target = REGISTRY if registry is None else registry

        def counter(spec: MetricSpec) -> Counter:
            return Counter(spec.name, spec.help, spec.labels, registry=target)

        def histogram(spec: MetricSpec) -> Histogram:
            return Histogram(
                spec.name, spec.help, spec.labels, registry=target, buckets=spec.buckets
            )

        return cls(
            polls=counter(POLLS),
            provider_calls=counter(PROVIDER_CALLS),
            provider_call_duration=histogram(PROVIDER_CALL_DURATION),
            transitions=counter(TRANSITIONS),
            polls_deferred=counter(POLLS_DEFERRED),
            circuit_changes=counter(CIRCUIT_CHANGES),
            detection_delay=histogram(DETECTION_DELAY),
            detection_delay_upper_bound=histogram(DETECTION_DELAY_UPPER_BOUND),
            tracking_requests=counter(TRACKING_REQUESTS),
            events_published=counter(EVENTS_PUBLISHED),
            event_publish_failures=counter(EVENT_PUBLISH_FAILURES),
        )


_instruments_lock = threading.Lock()
_instruments: Instruments | None = None


def instruments() -> Instruments:
    """This process's instruments in the global registry, built on first use."""
    global _instruments
    with _instruments_lock:
        if _instruments is None:
            _instruments = Instruments.create()
        return _instruments


def count_tracking(provider: object, result: str) -> None:
    """One kyc.track_verification outcome (see TRACKING_RESULTS)."""
    instruments().tracking_requests.labels(
        provider_label(provider), _bounded(result, TRACKING_RESULTS)
    ).inc()


def count_relayed(relay: str, published: int, *, failed: bool = False) -> None:
    """A relay round: how many events it published, and whether it stopped on an error."""
    metrics = instruments()
    if published > 0:
        metrics.events_published.labels(relay).inc(published)
    if failed:
        metrics.event_publish_failures.labels(relay).inc()


# -- the engine's observer -----------------------------------------------------------------


class PrometheusObserver:
    """The poll engine's `PollObserver`: counts into `Instruments`; every call is cheap.

    Detection delay is recorded two ways, each where it is known:
    - from the provider's own time of the change, when its answer carries one
      (the adapters' summaries: Predicate `completed_at`, Notus `updated_at`) and
      that time falls in the status the verification was leaving;
    - as an upper bound, from an earlier poll of the same verification by this
      process (remembered for the last `memory` verifications polled) to the poll
      that saw the change. In a prefork worker another process may have polled it
      in between: the bound only gets looser, never wrong.
    """

    PROVIDER_TIME_KEYS = ("completed_at", "updated_at")

    def __init__(self, metrics: Instruments, *, memory: int = 100_000) -> None:
        self.metrics = metrics
        self.memory = memory
        self._last_poll: OrderedDict[int, datetime] = OrderedDict()

    def call_finished(self, provider: str, seconds: float, outcome: str) -> None:
        name = provider_label(provider)
        self.metrics.provider_calls.labels(name, outcome).inc()
        self.metrics.provider_call_duration.labels(name).observe(max(seconds, 0.0))

    def decision_applied(self, decision: Decision) -> None:
        provider = provider_label(decision.stored.provider)
        self.metrics.polls.labels(provider, decision.outcome.value, _error_code(decision)).inc()
        transition = decision.transition
        if transition is not None:
            self.metrics.transitions.labels(
                provider, transition.to_status.value, transition.reason.value
            ).inc()
            if transition.reason is TransitionReason.PROVIDER:
                self._observe_detection(provider, decision, transition.occurred_at)
        self._remember_poll(decision)

    def polls_deferred(self, provider: str, limited_by: str, count: int) -> None:
        reason = _bounded(limited_by, DEFERRAL_REASONS)
        self.metrics.polls_deferred.labels(provider_label(provider), reason).inc(count)

    def circuit_changed(self, provider: str, state: CircuitState) -> None:
        self.metrics.circuit_changes.labels(provider_label(provider), state.value).inc()

    def _observe_detection(self, provider: str, decision: Decision, seen_at: datetime) -> None:
        changed_at = provider_change_time(decision)
        if changed_at is not None and changed_at >= decision.stored.in_status_since:
            delay = (seen_at - changed_at).total_seconds()
            self.metrics.detection_delay.labels(provider).observe(max(delay, 0.0))
        previous = self._last_poll.get(decision.stored.id)
        if previous is not None:
            bound = (seen_at - previous).total_seconds()
            self.metrics.detection_delay_upper_bound.labels(provider).observe(max(bound, 0.0))

    def _remember_poll(self, decision: Decision) -> None:
        verification_id = decision.stored.id
        polled_at = decision.update.last_polled_at
        if decision.update.status.is_terminal:
            self._last_poll.pop(verification_id, None)
        elif polled_at is not None:
            self._last_poll[verification_id] = polled_at
            self._last_poll.move_to_end(verification_id)
            while len(self._last_poll) > self.memory:
                self._last_poll.popitem(last=False)


def _error_code(decision: Decision) -> str:
    if decision.outcome is Outcome.ERROR and decision.error is not None:
        return decision.error.code.value
    if decision.outcome is Outcome.DEFERRED and decision.update.last_error_code is not None:
        return decision.update.last_error_code.value
    if decision.transition is not None and decision.transition.error_code is not None:
        return decision.transition.error_code.value
    return ""


def provider_change_time(decision: Decision) -> datetime | None:
    """The provider's own time of the answer's state, if its summary carries one."""
    result = decision.update.result
    summary = result.get("summary") if isinstance(result, dict) else None
    if not isinstance(summary, dict):
        return None
    for key in PrometheusObserver.PROVIDER_TIME_KEYS:
        value = summary.get(key)
        if isinstance(value, str) and (parsed := _parse_time(value)) is not None:
            return parsed
    return None


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


# -- beat's fleet collector ----------------------------------------------------------------


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
    ) -> None:
        self.db = db
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
        return FleetSnapshot(
            database=database,
            providers=providers,
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


# -- the process side: multiprocess directory, HTTP endpoint -------------------------------


def default_metrics_base() -> Path:
    return Path(tempfile.gettempdir()) / f"kyc-poller-metrics-{os.getuid()}"


def multiprocess_dir() -> Path | None:
    """The multiprocess directory this process counts into, if any."""
    raw = os.environ.get(MULTIPROC_ENV)
    return Path(raw) if raw and Path(raw).is_dir() else None


def prepare_process_metrics(settings: Settings) -> Path | None:
    """At a worker's or beat's start: its metrics directory, or none when metrics are off."""
    if settings.metrics_port <= 0:
        # Off: nothing is served, so nothing may count into an inherited directory either.
        os.environ.pop(MULTIPROC_ENV, None)
        return None
    return prepare_multiprocess_dir(settings.metrics_dir or None)


def prepare_multiprocess_dir(base: str | Path | None = None) -> Path:
    """A fresh directory for this process group's metric files; prometheus_client uses it.

    Made under `base` (default: a per-user directory in the system temp dir) and named
    after this process's pid; the directories of processes that no longer run are
    removed first, this one is removed when this process exits. Call it in the
    process that forks the others (a worker's main process), before anything counts.
    """
    root = Path(base) if base is not None else default_metrics_base()
    root.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        if entry.is_dir() and entry.name.isdigit() and not _pid_alive(int(entry.name)):
            shutil.rmtree(entry, ignore_errors=True)
    path = root / str(os.getpid())
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    os.environ[MULTIPROC_ENV] = str(path)
    atexit.register(_remove_directory, path, os.getpid())
    if "prometheus_client.values" in sys.modules and not multiprocess_active():
        log.error(
            "metrics_multiprocess_unavailable",
            reason="prometheus_client was imported before the metrics directory was set",
        )
    return path


def multiprocess_active() -> bool:
    """Does prometheus_client count into per-process files (multiprocess mode)?"""
    from prometheus_client import values

    return bool(getattr(values.ValueClass, "_multiprocess", False))


def mark_process_dead(pid: int) -> None:
    """A pool child exits: drop its live-gauge files (its counters stay, as they must)."""
    directory = multiprocess_dir()
    if directory is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def _remove_directory(path: Path, owner: int) -> None:
    if os.getpid() == owner:  # forked children inherit atexit handlers
        shutil.rmtree(path, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class MetricsServer:
    """The `/metrics` HTTP endpoint of this process (a daemon thread)."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def exposition_registry(collectors: Sequence[Collector] = ()) -> CollectorRegistry:
    """What `/metrics` shows: every process's files in multiprocess mode (else this
    process's global registry), plus `collectors`."""
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    directory = multiprocess_dir()
    if directory is not None and multiprocess_active():
        MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    else:
        registry.register(REGISTRY)
    for collector in collectors:
        registry.register(collector)
    return registry


def start_metrics_server(
    port: int, addr: str = "0.0.0.0", *, collectors: Sequence[Collector] = ()
) -> MetricsServer | None:
    """Serve `/metrics` on addr:port; None (logged) if the port cannot be bound."""
    from prometheus_client import start_http_server

    registry = exposition_registry(collectors)
    try:
        server, thread = start_http_server(port, addr, registry=registry)
    except OSError as exc:
        log.warning("metrics_server_unavailable", port=port, addr=addr, error=str(exc))
        return None
    log.info(
        "metrics_serving",
        port=int(server.server_port),
        addr=addr,
        multiprocess=multiprocess_dir() is not None,
    )
    return MetricsServer(server, thread)
