"""The poll workers' metric objects, and the two counts the tasks make directly.

prometheus_client chooses multiprocess mode when it is imported (from
PROMETHEUS_MULTIPROC_DIR), so it is imported only inside functions: a worker sets
its directory (`worker.adapters.metrics.process`) before anything counts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from worker.adapters.metrics.specs import (
    CIRCUIT_CHANGES,
    DETECTION_DELAY,
    DETECTION_DELAY_UPPER_BOUND,
    EVENT_PUBLISH_FAILURES,
    EVENTS_PUBLISHED,
    OTHER,
    POLLS,
    POLLS_DEFERRED,
    PROVIDER_CALL_DURATION,
    PROVIDER_CALLS,
    PROVIDER_SYNCS,
    REVERIFICATIONS_DUE,
    SAFETY_NET_SWITCHES,
    TASKS_REFUSED,
    TRACKING_REQUESTS,
    TRACKING_RESULTS,
    TRANSITIONS,
    UNKNOWN_STATUSES,
    MetricSpec,
    bounded_label,
    provider_label,
)

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Histogram


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
    unknown_statuses: Counter
    provider_syncs: Counter
    reverifications_due: Counter
    tracking_requests: Counter
    tasks_refused: Counter
    events_published: Counter
    event_publish_failures: Counter
    safety_net_switches: Counter

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
            unknown_statuses=counter(UNKNOWN_STATUSES),
            provider_syncs=counter(PROVIDER_SYNCS),
            reverifications_due=counter(REVERIFICATIONS_DUE),
            tracking_requests=counter(TRACKING_REQUESTS),
            tasks_refused=counter(TASKS_REFUSED),
            events_published=counter(EVENTS_PUBLISHED),
            event_publish_failures=counter(EVENT_PUBLISH_FAILURES),
            safety_net_switches=counter(SAFETY_NET_SWITCHES),
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
        provider_label(provider), bounded_label(result, TRACKING_RESULTS)
    ).inc()


def count_relayed(relay: str, published: int, *, failed: bool = False) -> None:
    """A relay round: how many events it published, and whether it stopped on an error."""
    metrics = instruments()
    if published > 0:
        metrics.events_published.labels(relay).inc(published)
    if failed:
        metrics.event_publish_failures.labels(relay).inc()


def count_refused_task(task: object, queue: object) -> None:
    """A task message a worker refused (see tasks.guard); labels bounded to known names."""
    from worker.domain.queues import QUEUE_TASKS

    known = {name for names in QUEUE_TASKS.values() for name in names}
    instruments().tasks_refused.labels(
        task if isinstance(task, str) and task in known else OTHER,
        queue if isinstance(queue, str) and queue in QUEUE_TASKS else OTHER,
    ).inc()
