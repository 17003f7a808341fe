"""The poll engine: a batch of verifications polled concurrently, decided, written at once.

For one batch of claimed ids (one Celery task):
1. read the rows (one query); skip missing and terminal ones, except approvals
   watched until their re-verification time (`StoredVerification.watched`);
2. per provider, ask the governor how many calls may go now (circuit breaker,
   fleet-wide rate limit); the others are deferred, not counted against;
3. among the granted rows of a provider that can sync (gu1), those the sync rule
   picks (`worker.domain.sync`) get a sync first, as far as the governor's sync
   cap and rate limit allow (`admit_sync`); the others are only polled;
4. call the providers concurrently on the process's event loop, outside any
   transaction, every answer bounded by the transport (a sync, then its poll);
5. decide each row with the pure rules (`worker.domain.decisions`, `.watch` for
   a watched approval); an unexpected exception in one poll becomes that row's
   `internal_error`;
6. apply every decision in ONE transaction, each guarded by its row's version;
7. publish the batch's events at once (the `publisher`, when given), except those
   of verifications with an earlier event still unpublished, which the write found
   and which are left to the ordered relay (`worker.domain.outbox`);
8. tell the governor how each provider answered (syncs aside: their poll says),
   and the log and the observer what was decided: after the events are out, as
   nothing between the answers and the publish should wait for them.

Guarantees kept from the one-poll-per-task design: the version-guarded write
(a concurrent or duplicated poll of the same row loses and changes nothing),
exactly one transition and one event per change, and a killed worker loses
nothing (its rows' claim lease runs out and they are claimed again).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections import defaultdict
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar, runtime_checkable

import structlog
from redis.exceptions import RedisError

from worker.adapters.contract import ProviderAdapter, Transport, extra_map_variable
from worker.domain.decisions import (
    Decision,
    Deferred,
    Observation,
    Outcome,
    PollPolicy,
    StoredVerification,
    decide,
    is_too_old,
    timed_out,
    with_sync,
)
from worker.domain.errors import (
    ErrorCode,
    ProviderError,
    RateLimitedError,
    TransientProviderError,
    TransitionReason,
)
from worker.domain.events import REVERIFICATION_DUE
from worker.domain.outbox import Written
from worker.domain.results import PollResult
from worker.domain.safety_net import FoundTransition
from worker.domain.schedule import SchedulePlan
from worker.domain.sync import SyncAttempt, sync_due
from worker.domain.unknown_words import UnknownWords
from worker.domain.watch import decide_watch
from worker.services.governor import CircuitState, ProviderGovernor
from worker.services.ports import EventPublisher, SafetyNet, VerificationStore

log = structlog.get_logger(__name__)

T = TypeVar("T")


class PollObserver(Protocol):
    """What the engine tells whoever watches it (metrics); every method must be cheap."""

    def call_finished(self, provider: str, seconds: float, outcome: str) -> None:
        """One provider call: `outcome` is "answered" or an ErrorCode value."""

    def decision_applied(self, decision: Decision) -> None:
        """A decision committed (its outcome, and for a transition its new status)."""

    def polls_deferred(self, provider: str, limited_by: str, count: int) -> None:
        """Rows not polled now: circuit_open | paused | rate_limited."""

    def circuit_changed(self, provider: str, state: CircuitState) -> None:
        """The provider's breaker changed state (seen by this worker)."""


# Optional hooks for what the providers said beyond statuses: an observer with the method
# gets it (checked once per engine, each hook on its own), one without is left alone.


@runtime_checkable
class UnknownStatusHook(Protocol):
    def unknown_status(self, provider: str, word_label: str) -> None:
        """A committed poll answered with a word the adapter's table lacks.

        `word_label` is bounded (`worker.domain.unknown_words`: at most 40 safe
        characters, at most 20 words per provider per process, then "_other").
        """


@runtime_checkable
class SyncHook(Protocol):
    def sync_finished(self, provider: str, outcome: str) -> None:
        """A committed sync request: `outcome` is "accepted" or an ErrorCode value."""


@runtime_checkable
class ReverificationHook(Protocol):
    def reverification_due(self, provider: str, trigger: str) -> None:
        """A committed reverification_due event: trigger needs_reverification | expired."""


class NoObserver:
    def call_finished(self, provider: str, seconds: float, outcome: str) -> None:
        return None

    def decision_applied(self, decision: Decision) -> None:
        return None

    def polls_deferred(self, provider: str, limited_by: str, count: int) -> None:
        return None

    def circuit_changed(self, provider: str, state: CircuitState) -> None:
        return None

    def unknown_status(self, provider: str, word_label: str) -> None:
        return None

    def sync_finished(self, provider: str, outcome: str) -> None:
        return None

    def reverification_due(self, provider: str, trigger: str) -> None:
        return None


Runner = Callable[[Coroutine[Any, Any, Any]], Any]


@dataclass(frozen=True)
class Call:
    """One row to call its provider for, and whether a sync goes first."""

    row: StoredVerification
    adapter: ProviderAdapter[Any]
    sync: bool = False


# What one call brought: the poll's observation, and the sync's outcome if one was asked.
Fetched = tuple[PollResult | ProviderError, SyncAttempt | None]


@dataclass
class BatchReport:
    """What one batch did (counts by outcome; `conflicts`: decisions a newer write beat).

    `published`: events the batch published itself; `left_for_relay`: its events still
    unpublished (held back, refused by Redis, or no publisher), for the ordered relay;
    `publish_failed`: the batch's own publish stopped on an error.
    """

    polled: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    conflicts: int = 0
    skipped: int = 0
    event_ids: list[str] = field(default_factory=list)
    published: int = 0
    left_for_relay: int = 0
    publish_failed: bool = False

    @property
    def transitions(self) -> int:
        return self.outcomes.get(Outcome.TRANSITION, 0)


class PollEngine:
    """Polls batches of verifications (plain code: Celery's task only calls `poll_batch`)."""

    def __init__(
        self,
        store: VerificationStore,
        adapters: Mapping[str, ProviderAdapter[Any]],
        transport: Transport,
        policy: PollPolicy,
        *,
        runner: Runner,
        governor: ProviderGovernor | None = None,
        clock: Callable[[], datetime],
        rng: random.Random | None = None,
        max_in_flight: int = 256,
        observer: PollObserver | None = None,
        schedule_source: Callable[[], SchedulePlan] | None = None,
        publisher: EventPublisher | None = None,
        safety_net: SafetyNet | None = None,
    ) -> None:
        self.store = store
        self.adapters = adapters
        self.transport = transport
        self.policy = policy
        self.runner = runner
        self.governor = governor
        self.clock = clock
        self.rng = rng or random.SystemRandom()
        self.max_in_flight = max_in_flight
        self.observer: PollObserver = observer or NoObserver()
        watcher = self.observer
        self.on_unknown: UnknownStatusHook = (
            watcher if isinstance(watcher, UnknownStatusHook) else NoObserver()
        )
        self.on_sync: SyncHook = watcher if isinstance(watcher, SyncHook) else NoObserver()
        self.on_reverification: ReverificationHook = (
            watcher if isinstance(watcher, ReverificationHook) else NoObserver()
        )
        # Unknown status words seen by this process: logged once each, bounded.
        self.unknown_words = UnknownWords()
        # Adaptive mode: the plan is re-read per batch (the learner caches it).
        self.schedule_source = schedule_source
        # None: the batch's events wait for the ordered relay (the caller runs it).
        self.publisher = publisher
        # None: waits never stretch (no hints are counted).
        self.safety_net = safety_net

    def poll_batch(self, ids: Sequence[int]) -> BatchReport:
        if self.schedule_source is not None and self.policy.schedule is not None:
            self.policy = dataclasses.replace(self.policy, schedule=self.schedule_source())
        if self.safety_net is not None:
            self.policy = dataclasses.replace(self.policy, stretch=self.safety_net.stretches())
        report = BatchReport()
        rows = self.store.load(list(dict.fromkeys(ids)))
        report.skipped = len(ids) - len(rows)
        now = self.clock()
        decisions: list[Decision] = []
        to_call: list[Call] = []
        by_provider: dict[str, list[StoredVerification]] = defaultdict(list)
        for row in rows:
            if row.watched:
                by_provider[row.provider].append(row)
            elif row.status.is_terminal:
                report.skipped += 1
            elif is_too_old(row, now, self.policy):
                decisions.append(timed_out(row, now, self.policy))
            else:
                by_provider[row.provider].append(row)
        for provider, provider_rows in by_provider.items():
            adapter = self.adapters.get(provider)
            if adapter is None:
                error = TransientProviderError(
                    ErrorCode.PROVIDER_NOT_CONFIGURED,
                    f"provider {provider!r} has no base URL or credentials configured "
                    "on this worker",
                )
                decisions.extend(self._decide(row, error, now) for row in provider_rows)
                continue
            granted, deferred = self._admit(provider, provider_rows, now)
            decisions.extend(deferred)
            syncing = self._admit_syncs(provider, adapter, granted, now)
            to_call.extend(Call(row, adapter, row.id in syncing) for row in granted)

        fetched = self.runner(self._fetch_all(to_call)) if to_call else []
        now = self.clock()
        answered: dict[str, list[Observation]] = defaultdict(list)
        for call, (observation, attempt) in zip(to_call, fetched, strict=True):
            answered[call.row.provider].append(observation)
            if call.row.watched and isinstance(observation, PollResult):
                _log_watched_answer(call.row, observation)
            decision = self._decide(call.row, observation, now)
            if attempt is not None:
                decision = with_sync(decision, attempt, now)
            decisions.append(decision)
        try:
            written = self.store.apply(decisions)
            self._publish(written, report)
        finally:
            # After the write and the publish, which should not wait for it; told even if
            # the write failed (the breaker counts what the provider did).
            self._report_answers(answered)
        applied = written.applied
        report.polled = len(to_call)
        report.conflicts = len(decisions) - len(applied)
        for decision in applied:
            report.outcomes[decision.outcome] += 1
            if decision.event is not None:
                report.event_ids.append(decision.event["event_id"])
            _log_decision(decision)
            self.observer.decision_applied(decision)
            if decision.error is not None and decision.error.code is ErrorCode.UNKNOWN_STATUS:
                self._unknown_status(decision)
            self._report_facts(decision)
        if report.conflicts:
            log.info("polls_superseded", count=report.conflicts)
        self._record_found(applied)
        return report

    # -- the parts -----------------------------------------------------------------------

    def _record_found(self, applied: Sequence[Decision]) -> None:
        """Tell the safety net which committed transitions a poll found (hinted or not)."""
        if self.safety_net is None:
            return
        found = [
            FoundTransition(
                decision.stored.provider,
                decision.stored.id,
                decision.stored.in_status_since.timestamp(),
            )
            for decision in applied
            if decision.transition is not None
            and decision.transition.reason is TransitionReason.PROVIDER
        ]
        if not found:
            return
        try:
            self.safety_net.record_transitions(found)
        except RedisError as exc:
            # Those transitions go uncounted; the polls and their events are done.
            log.warning("safety_net_record_failed", error_type=type(exc).__name__)

    def _publish(self, written: Written, report: BatchReport) -> None:
        """Publish what may go now; count what is left for the ordered relay."""
        free, held = written.split()
        report.left_for_relay = len(free) + len(held)
        if held:
            log.info("events_held_for_relay", count=len(held))
        if self.publisher is None or not free:
            return
        try:
            outcome = self.publisher.publish_committed(free)
        except Exception as exc:
            # Committed rows stay unpublished: the ordered relay publishes them (a no-op for
            # what Redis took already) and marks them.
            log.warning("direct_publish_failed", error_type=type(exc).__name__)
            report.publish_failed = True
            return
        report.published = outcome.published
        report.left_for_relay -= outcome.published + outcome.already_published
        report.publish_failed = outcome.pending_error is not None

    def _report_answers(self, answered: Mapping[str, list[Observation]]) -> None:
        for provider, provider_observations in answered.items():
            try:
                self._report_to_governor(provider, provider_observations)
            except RedisError as exc:
                # The answers are in hand: store them. The breaker misses one batch's count
                # (and a Retry-After pause), which the next batches make up for.
                log.warning(
                    "governor_record_failed", provider=provider, error_type=type(exc).__name__
                )

    def _admit(
        self, provider: str, rows: list[StoredVerification], now: datetime
    ) -> tuple[list[StoredVerification], list[Decision]]:
        """Split rows into those that may be polled now and deferral decisions for the rest."""
        if self.governor is None:
            return rows, []
        admission = self.governor.admit(provider, len(rows))
        if admission.changed_to is not None:
            self._circuit_changed(provider, admission.changed_to)
        if admission.granted >= len(rows):
            return rows, []
        until = now + timedelta(seconds=max(admission.wait_seconds, 0.5))
        if admission.limited_by == "rate_limited":
            reason = Deferred(until, ErrorCode.RATE_LIMITED, "not polled: fleet-wide rate limit")
        elif admission.limited_by == "operator_paused":
            reason = Deferred(until, ErrorCode.PROVIDER_PAUSED, "not polled: paused by an operator")
        elif admission.limited_by == "paused":
            reason = Deferred(until, ErrorCode.RATE_LIMITED, "not polled: provider asked to wait")
        else:
            reason = Deferred(until)
        rest = rows[admission.granted :]
        self.observer.polls_deferred(provider, admission.limited_by, len(rest))
        log.info(
            "polls_deferred",
            provider=provider,
            count=len(rest),
            limited_by=admission.limited_by,
            wait_seconds=round(admission.wait_seconds, 2),
        )
        return rows[: admission.granted], [self._decide(row, reason, now) for row in rest]

    def _admit_syncs(
        self,
        provider: str,
        adapter: ProviderAdapter[Any],
        rows: list[StoredVerification],
        now: datetime,
    ) -> set[int]:
        """The ids among `rows` to sync before polling (the rule, then the governor's cap)."""
        policy = self.policy.sync
        if not adapter.supports_sync or not policy.enabled:
            return set()
        wanted = [row.id for row in rows if sync_due(row, now, policy)]
        if not wanted:
            return set()
        allowed = len(wanted)
        if self.governor is not None:
            try:
                allowed = self.governor.admit_sync(provider, len(wanted), policy.max_per_minute)
            except RedisError as exc:
                # No cap can be checked: no sync now (the rows are polled as usual).
                log.warning(
                    "sync_admission_failed", provider=provider, error_type=type(exc).__name__
                )
                return set()
        return set(wanted[:allowed])

    async def _fetch_all(self, calls: list[Call]) -> list[Fetched]:
        limit = asyncio.Semaphore(self.max_in_flight)

        async def one(call: Call) -> Fetched:
            async with limit:
                attempt = await self._sync(call) if call.sync else None
                return await self._fetch_one(call.row, call.adapter), attempt

        return list(await asyncio.gather(*(one(call) for call in calls)))

    async def _sync(self, call: Call) -> SyncAttempt | None:
        """Ask the provider to re-sync this verification; its outcome, never an exception."""
        row = call.row
        try:
            return await call.adapter.request_sync(
                self.transport, row.external_id, row.verification_type
            )
        except Exception as exc:
            log.error(
                "sync_crashed",
                verification_id=row.id,
                provider=row.provider,
                error_type=type(exc).__name__,
            )
            return SyncAttempt(ErrorCode.INTERNAL_ERROR.value)

    async def _fetch_one(
        self, row: StoredVerification, adapter: ProviderAdapter[Any]
    ) -> PollResult | ProviderError:
        started = time.perf_counter()
        outcome: PollResult | ProviderError = await self._call(row, adapter)
        self.observer.call_finished(
            row.provider,
            time.perf_counter() - started,
            "answered" if isinstance(outcome, PollResult) else outcome.code.value,
        )
        return outcome

    async def _call(
        self, row: StoredVerification, adapter: ProviderAdapter[Any]
    ) -> PollResult | ProviderError:
        try:
            return await adapter.fetch_status(
                self.transport, row.external_id, row.verification_type
            )
        except ProviderError as error:
            return error
        except Exception as exc:
            # The text may quote provider data: only its type is recorded and logged.
            log.error(
                "poll_crashed",
                verification_id=row.id,
                provider=row.provider,
                error_type=type(exc).__name__,
            )
            return TransientProviderError(
                ErrorCode.INTERNAL_ERROR, f"unexpected {type(exc).__name__} while polling"
            )

    def _decide(self, row: StoredVerification, observation: Observation, now: datetime) -> Decision:
        rule = decide_watch if row.watched else decide
        try:
            return rule(row, observation, now, self.policy, self.rng)
        except Exception as exc:
            log.error(
                "decision_crashed",
                verification_id=row.id,
                provider=row.provider,
                error_type=type(exc).__name__,
            )
            error = TransientProviderError(
                ErrorCode.INTERNAL_ERROR, f"unexpected {type(exc).__name__} while deciding"
            )
            return rule(row, error, now, self.policy, self.rng)

    def _report_facts(self, decision: Decision) -> None:
        """Syncs and re-verification notices, to the log and the optional observer hooks."""
        row = decision.stored
        for action in decision.actions:
            log.info(
                "provider_sync",
                verification_id=row.id,
                provider=row.provider,
                outcome=action.outcome,
                http_status=action.http_status,
            )
            self.on_sync.sync_finished(row.provider, action.outcome)
        event = decision.event
        if event is not None and event["event_type"] == REVERIFICATION_DUE:
            trigger = str(event["reverification"]["trigger"])
            log.info(
                "reverification_due",
                verification_id=row.id,
                provider=row.provider,
                trigger=trigger,
                event_id=event["event_id"],
            )
            self.on_reverification.reverification_due(row.provider, trigger)

    def _report_to_governor(self, provider: str, observations: list[Observation]) -> None:
        if self.governor is None:
            return
        faults = sum(1 for o in observations if isinstance(o, ProviderError) and o.provider_wide)
        pauses = [
            o.retry_after
            for o in observations
            if isinstance(o, RateLimitedError) and o.retry_after is not None
        ]
        changed = self.governor.record(
            provider,
            successes=sum(1 for o in observations if _provider_answered(o)),
            faults=faults,
            # Clamped like a row's own Retry-After: one answer cannot halt a provider for a day.
            pause_seconds=min(max(pauses), self.policy.error_backoff.cap) if pauses else None,
        )
        if changed is not None:
            self._circuit_changed(provider, changed)

    def _unknown_status(self, decision: Decision) -> None:
        """Count the word, and log it the first time this process sees it (WARNING)."""
        row = decision.stored
        error = decision.error
        word = error.provider_status if error is not None else None
        sighting = self.unknown_words.seen(row.provider, word or decision.update.provider_status)
        if sighting.first:
            log.warning(
                "unknown_provider_status",
                provider=row.provider,
                provider_status=sighting.label,
                verification_id=row.id,
                map_with=extra_map_variable(row.provider.upper()),
            )
        elif sighting.capped_now:
            log.warning(
                "unknown_provider_status_words_capped",
                provider=row.provider,
                words=self.unknown_words.max_words,
            )
        self.on_unknown.unknown_status(row.provider, sighting.label)

    def _circuit_changed(self, provider: str, state: CircuitState) -> None:
        _log_circuit(provider, state)
        self.observer.circuit_changed(provider, state)


def _provider_answered(observation: Observation) -> bool:
    """The provider is up and speaking for this verification: a status, or an HTTP answer
    that is the verification's problem (a 404, a malformed body). For the breaker these are
    successes: a half-open probe answered 404 closes the circuit instead of holding it
    half-open for a probe timeout. A 429 is neither (its pause handles it)."""
    if isinstance(observation, PollResult):
        return True
    return (
        isinstance(observation, ProviderError)
        and observation.http_status is not None
        and not observation.provider_wide
        and not isinstance(observation, RateLimitedError)
    )


def _log_watched_answer(row: StoredVerification, answer: PollResult) -> None:
    """A watched approval whose provider now says another status: kept approved (a terminal
    status is final), the word recorded; said once per check, for an operator to look at."""
    if answer.status is not row.status:
        log.warning(
            "watched_status_differs",
            verification_id=row.id,
            provider=row.provider,
            status=row.status.value,
            provider_says=answer.status.value,
        )


def _log_circuit(provider: str, state: CircuitState) -> None:
    event = {
        CircuitState.OPEN: "circuit_opened",
        CircuitState.HALF_OPEN: "circuit_half_open",
        CircuitState.CLOSED: "circuit_closed",
    }[state]
    (log.warning if state is CircuitState.OPEN else log.info)(event, provider=provider)


def _log_decision(decision: Decision) -> None:
    row = decision.stored
    update = decision.update
    if decision.outcome is Outcome.TRANSITION:
        assert decision.transition is not None and decision.event is not None
        log.info(
            "status_changed",
            verification_id=row.id,
            provider=row.provider,
            from_status=decision.transition.from_status.value,
            to_status=decision.transition.to_status.value,
            provider_status=decision.transition.provider_status,
            reason=decision.transition.reason.value,
            event_id=decision.event["event_id"],
        )
    elif decision.outcome is Outcome.ERROR and decision.error is not None:
        error = decision.error
        (log.error if error.permanent else log.warning)(
            "poll_failed",
            verification_id=row.id,
            provider=row.provider,
            error_code=error.code.value,
            error=error.message,
            permanent=error.permanent,
            provider_wide=error.provider_wide,
            http_status=error.http_status,
            consecutive_errors=update.error_count,
        )
    elif decision.outcome is Outcome.UNCHANGED:
        log.debug("poll_unchanged", verification_id=row.id, provider=row.provider)
