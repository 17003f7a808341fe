"""The poll engine's observer: what the engine reports becomes Prometheus counts."""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime

from worker.adapters.metrics.counts import Instruments
from worker.adapters.metrics.specs import DEFERRAL_REASONS, bounded_label, provider_label
from worker.domain.decisions import Decision, Outcome
from worker.domain.errors import ErrorCode, TransitionReason
from worker.domain.reverification import Trigger as ReverificationTrigger
from worker.services.governor import CircuitState

SYNC_OUTCOMES = ("accepted", *(code.value for code in ErrorCode))
REVERIFICATION_TRIGGERS = tuple(trigger.value for trigger in ReverificationTrigger)


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
        reason = bounded_label(limited_by, DEFERRAL_REASONS)
        self.metrics.polls_deferred.labels(provider_label(provider), reason).inc(count)

    def circuit_changed(self, provider: str, state: CircuitState) -> None:
        self.metrics.circuit_changes.labels(provider_label(provider), state.value).inc()

    def unknown_status(self, provider: str, word_label: str) -> None:
        # The word is already bounded (worker.domain.unknown_words): a label is safe.
        self.metrics.unknown_statuses.labels(provider_label(provider), word_label).inc()

    def sync_finished(self, provider: str, outcome: str) -> None:
        self.metrics.provider_syncs.labels(
            provider_label(provider), bounded_label(outcome, SYNC_OUTCOMES)
        ).inc()

    def reverification_due(self, provider: str, trigger: str) -> None:
        self.metrics.reverifications_due.labels(
            provider_label(provider), bounded_label(trigger, REVERIFICATION_TRIGGERS)
        ).inc()

    def safety_net_switched(self, provider: str, stretched: bool) -> None:
        state = "stretched" if stretched else "normal"
        self.metrics.safety_net_switches.labels(provider_label(provider), state).inc()

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
