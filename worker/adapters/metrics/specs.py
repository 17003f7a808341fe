"""What kyc-poller exports to Prometheus: every metric's name, type, labels and meaning.

Names follow the Prometheus conventions (`kyc_poller_` prefix, counters end in
`_total`, durations in `_seconds`); labels are bounded vocabularies only:
provider names, statuses, outcomes and error codes, never ids. Celery's own task
and queue metrics are left to celery-exporter / Flower, whose `celery_*` and
`flower_*` names these do not collide with. The README's metrics table, the
dashboard and the alert rules are checked against `ALL_METRICS`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from worker.adapters.registry import PROVIDER_NAMES

DEFAULT_METRICS_PORT = 9808

# Label value for anything outside a bounded vocabulary (an unknown provider name
# in a rejected tracking request, say): labels never carry arbitrary input.
OTHER = "other"

RELAY_DIRECT = "direct"
RELAY_AFTER_POLL = "after_poll"
RELAY_BEAT = "beat"

TRACKING_RESULTS = ("created", "existing", "rejected", "over_ceiling", "retried")
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
UNKNOWN_STATUSES = MetricSpec(
    "kyc_poller_unknown_provider_status_total",
    "counter",
    ("provider", "provider_status"),
    "Polls answered with a status word the provider's table lacks, by word (bounded: at most "
    '40 safe characters, 20 words per provider, then "_other"; see kyc-poller '
    "unknown-statuses).",
)
PROVIDER_SYNCS = MetricSpec(
    "kyc_poller_provider_syncs_total",
    "counter",
    ("provider", "outcome"),
    'Sync requests for stuck verifications (gu1), by outcome: "accepted" or the error code.',
)
REVERIFICATIONS_DUE = MetricSpec(
    "kyc_poller_reverifications_due_total",
    "counter",
    ("provider", "trigger"),
    "verification.reverification_due events committed, by trigger (needs_reverification, expired).",
)
TRACKING_REQUESTS = MetricSpec(
    "kyc_poller_tracking_requests_total",
    "counter",
    ("provider", "result"),
    "kyc.track_verification requests: created, existing (already tracked), rejected "
    "(bad input), over_ceiling (the provider's ceiling of open verifications), retried "
    "(database unavailable).",
)
TASKS_REFUSED = MetricSpec(
    "kyc_poller_tasks_refused_total",
    "counter",
    ("task", "queue"),
    "Task messages a worker refused to run: a task of another queue's role, or one claiming "
    'a queue it does not belong to (task: a kyc-poller task name or "other").',
)
EVENTS_PUBLISHED = MetricSpec(
    "kyc_poller_events_published_total",
    "counter",
    ("relay",),
    "Events published to Redis, by relay: direct (a poll batch's own events, right after its "
    "commit), after_poll (the ordered relay after a batch that left some) or beat "
    "(kyc.relay_outbox).",
)
EVENT_PUBLISH_FAILURES = MetricSpec(
    "kyc_poller_event_publish_failures_total",
    "counter",
    ("relay",),
    "Relay rounds that stopped on an error (Redis or the database); the outbox keeps the events.",
)
SAFETY_NET_SWITCHES = MetricSpec(
    "kyc_poller_safety_net_switches_total",
    "counter",
    ("provider", "state"),
    "A provider's safety net switched (state: stretched while its hints arrive, normal when they "
    "stop); counted once for the fleet.",
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
    UNKNOWN_STATUSES,
    PROVIDER_SYNCS,
    REVERIFICATIONS_DUE,
    TRACKING_REQUESTS,
    TASKS_REFUSED,
    EVENTS_PUBLISHED,
    EVENT_PUBLISH_FAILURES,
    SAFETY_NET_SWITCHES,
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
SAFETY_NET_STRETCHED = MetricSpec(
    "kyc_poller_safety_net_stretched",
    "gauge",
    ("provider",),
    "1 while the provider's poll waits are stretched because its hints arrive (KYC_HINT_*).",
)
HINTED_TRANSITION_SHARE = MetricSpec(
    "kyc_poller_hinted_transition_share",
    "gauge",
    ("provider",),
    "Share of the provider's recent transitions (KYC_HINT_WINDOW) that a hint preceded.",
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
    SAFETY_NET_STRETCHED,
    HINTED_TRANSITION_SHARE,
    FLEET_REFRESH_DURATION,
    FLEET_REFRESH_TIMESTAMP,
    FLEET_REFRESH_ERRORS,
)

ALL_METRICS = WORKER_METRICS + FLEET_METRICS


def provider_label(name: object) -> str:
    """A provider name as a label value: a known provider, else `other`."""
    return name if isinstance(name, str) and name in PROVIDER_NAMES else OTHER


def bounded_label(value: str, vocabulary: Iterable[str]) -> str:
    return value if value in vocabulary else OTHER
