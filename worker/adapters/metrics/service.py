"""The HTTP service's own metrics (`kyc-poller serve`), served at its `/metrics`.

One registry per service process (not prometheus_client's global one, and not the
workers' multiprocess files): each replica is scraped on its own, so the service scales
out without sharing anything. Labels are bounded vocabularies only: provider names,
refusal reasons, nudge outcomes, API routes and results, never ids or token names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from worker.adapters.metrics.specs import MetricSpec

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

FLUSH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

WEBHOOKS = MetricSpec(
    "kyc_poller_webhooks_total",
    "counter",
    ("provider", "result"),
    "Webhook requests by result: accepted, or why refused (not_configured, too_large, too_slow, "
    "missing_signature, bad_signature, stale, replayed, too_deep, malformed, rate_limited, "
    "ignored_event, overloaded, unavailable).",
)
HINTS = MetricSpec(
    "kyc_poller_hints_total",
    "counter",
    ("provider", "source", "outcome"),
    "Hints (webhook, stream, api) by what the poll-now path did: scheduled, collapsed, "
    "terminal, unknown, tracked (an unknown id tracked, by opt-in), not_enqueued, failed.",
)
HINT_FLUSH_DURATION = MetricSpec(
    "kyc_poller_hint_flush_duration_seconds",
    "histogram",
    (),
    "One flush of buffered hints: lookup, collapse keys, claim, poll tasks sent.",
    FLUSH_BUCKETS,
)
HINTS_BUFFERED = MetricSpec(
    "kyc_poller_hints_buffered",
    "gauge",
    (),
    "Hints accepted and waiting for the next flush (lost if this process dies: the schedule "
    "polls them anyway).",
)
API_REQUESTS = MetricSpec(
    "kyc_poller_api_requests_total",
    "counter",
    ("route", "result"),
    "App API requests by route and result: ok, unauthorized (no or unknown token), revoked, "
    "forbidden (scope), rejected (bad input), not_found, unavailable.",
)
HTTP_DURATION = MetricSpec(
    "kyc_poller_http_request_duration_seconds",
    "histogram",
    ("route",),
    "Time from a request's arrival to its answer, by route (webhook, api, health, metrics, docs).",
    REQUEST_BUCKETS,
)
STREAMS_OPEN = MetricSpec(
    "kyc_poller_status_streams_open",
    "gauge",
    ("provider",),
    "Provider status streams this process holds open.",
)
STREAM_EVENTS = MetricSpec(
    "kyc_poller_status_stream_events_total",
    "counter",
    ("provider", "result"),
    "Status stream events: message (a hint), opened, closed (ended by the provider or its "
    "time limit), failed (error or refused; retried with backoff), leased_elsewhere.",
)

SERVICE_METRICS = (
    WEBHOOKS,
    HINTS,
    HINT_FLUSH_DURATION,
    HINTS_BUFFERED,
    API_REQUESTS,
    HTTP_DURATION,
    STREAMS_OPEN,
    STREAM_EVENTS,
)


@dataclass(frozen=True)
class ServiceInstruments:
    registry: CollectorRegistry
    webhooks: Counter
    hints: Counter
    hint_flush_duration: Histogram
    hints_buffered: Gauge
    api_requests: Counter
    http_duration: Histogram
    streams_open: Gauge
    stream_events: Counter

    @classmethod
    def create(cls) -> ServiceInstruments:
        """A fresh registry with every service metric in it."""
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        registry = CollectorRegistry()

        def counter(spec: MetricSpec) -> Counter:
            return Counter(spec.name, spec.help, spec.labels, registry=registry)

        def gauge(spec: MetricSpec) -> Gauge:
            return Gauge(spec.name, spec.help, spec.labels, registry=registry)

        def histogram(spec: MetricSpec) -> Histogram:
            return Histogram(
                spec.name, spec.help, spec.labels, registry=registry, buckets=spec.buckets
            )

        return cls(
            registry=registry,
            webhooks=counter(WEBHOOKS),
            hints=counter(HINTS),
            hint_flush_duration=histogram(HINT_FLUSH_DURATION),
            hints_buffered=gauge(HINTS_BUFFERED),
            api_requests=counter(API_REQUESTS),
            http_duration=histogram(HTTP_DURATION),
            streams_open=gauge(STREAMS_OPEN),
            stream_events=counter(STREAM_EVENTS),
        )

    def exposition(self) -> tuple[bytes, str]:
        """The text format and its content type, for `/metrics`."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
