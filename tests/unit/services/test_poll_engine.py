"""The poll engine over the in-memory store: batches, guards, crashes, the governor."""

from __future__ import annotations

import random

import fakeredis
import pytest
import redis

from tests.doubles import NO_TRANSPORT, FakeClock, ScriptedAdapter, result, run_coroutine
from worker.adapters.memory_store import MemoryStore
from worker.domain.backoff import BackoffSettings
from worker.domain.decisions import Outcome, PollPolicy
from worker.domain.errors import (
    ErrorCode,
    PermanentProviderError,
    ProviderUnavailableError,
    RateLimitedError,
)
from worker.domain.statuses import VerificationStatus as S
from worker.services.governor import BreakerSettings, CircuitState, ProviderGovernor, RateLimit
from worker.services.polling import PollEngine
from worker.services.relay import RelayReport

POLICY = PollPolicy(
    poll_backoff=BackoffSettings(base=5.0, cap=300.0, floor=1.0),
    error_backoff=BackoffSettings(base=10.0, cap=600.0, floor=2.0),
    max_age_seconds=3600.0,
    max_permanent_errors=3,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def engine(store, adapter, clock, governor=None, **kwargs) -> PollEngine:
    return PollEngine(
        store,
        {adapter.name: adapter},
        transport=NO_TRANSPORT,  # the scripted adapter never sends
        policy=POLICY,
        runner=run_coroutine,
        governor=governor,
        clock=clock,
        rng=random.Random(3),
        **kwargs,
    )


def add(store, clock, n, provider="notus") -> list[int]:
    return [store.add(provider, f"sess-{i}", now=clock()) for i in range(n)]


def test_a_batch_is_polled_concurrently_and_written_at_once(store, clock):
    adapter = ScriptedAdapter("notus", [result("in_review")])
    adapter.delay = 0.05
    ids = add(store, clock, 50)
    report = engine(store, adapter, clock).poll_batch(ids)
    assert adapter.most_in_flight == 50
    assert report.polled == 50
    assert report.outcomes[Outcome.TRANSITION] == 50
    assert len(store.events) == len(store.transitions) == 50
    assert {row.stored.status for row in store.rows.values()} == {S.IN_REVIEW}


def test_the_in_flight_limit_bounds_concurrency(store, clock):
    adapter = ScriptedAdapter("notus", [result("pending")])
    adapter.delay = 0.01
    engine(store, adapter, clock, max_in_flight=7).poll_batch(add(store, clock, 40))
    assert adapter.most_in_flight == 7


def test_a_duplicated_batch_changes_nothing_twice(store, clock):
    ids = add(store, clock, 3)
    stale = store.load(ids)
    adapter = ScriptedAdapter("notus", [result("approved")])
    first = engine(store, adapter, clock).poll_batch(ids)
    assert first.transitions == 3
    # A second worker that read the rows before the first one wrote loses every guard.
    second = engine(MemoryStoreView(store, stale), adapter, clock).poll_batch(ids)
    assert second.conflicts == 3
    assert len(store.events) == 3


class MemoryStoreView:
    """A store whose reads are frozen in the past (another worker's stale snapshot)."""

    def __init__(self, store: MemoryStore, stale) -> None:
        self.store = store
        self.stale = stale

    def load(self, ids):
        return self.stale

    def apply(self, decisions):
        return self.store.apply(decisions)


def test_terminal_and_missing_rows_are_skipped(store, clock):
    ids = add(store, clock, 2)
    done = store.add("notus", "done", now=clock(), status=S.APPROVED)
    adapter = ScriptedAdapter("notus", [result("pending")])
    report = engine(store, adapter, clock).poll_batch([*ids, done, 999])
    assert report.polled == 2 and report.skipped == 2
    assert adapter.calls == 2


def test_an_unexpected_exception_is_recorded_on_its_row_only(store, clock):
    ids = add(store, clock, 2)
    adapter = ScriptedAdapter("notus", [KeyError("name: Alice"), result("in_review")])
    report = engine(store, adapter, clock).poll_batch(ids)
    assert report.outcomes[Outcome.ERROR] == 1 and report.outcomes[Outcome.TRANSITION] == 1
    crashed = [row for row in store.rows.values() if row.last_error_code]
    assert [row.last_error_code for row in crashed] == [ErrorCode.INTERNAL_ERROR]
    assert "Alice" not in crashed[0].last_error


def test_a_provider_not_configured_here_waits_without_failing(store, clock):
    ids = add(store, clock, 2, provider="gu1")
    report = engine(store, ScriptedAdapter("notus", [result("pending")]), clock).poll_batch(ids)
    assert report.outcomes[Outcome.ERROR] == 2
    assert {row.last_error_code for row in store.rows.values()} == {
        ErrorCode.PROVIDER_NOT_CONFIGURED
    }


def test_permanent_errors_end_failed_after_the_limit(store, clock):
    ids = add(store, clock, 1)
    adapter = ScriptedAdapter("notus", [PermanentProviderError(ErrorCode.NOT_FOUND, "404")])
    poller = engine(store, adapter, clock)
    for _ in range(3):
        clock.advance(60)
        poller.poll_batch(ids)
    assert store.rows[ids[0]].stored.status is S.FAILED
    assert store.events[-1]["error_code"] == "not_found"


def governor_for(clock, **rate) -> ProviderGovernor:
    breaker = BreakerSettings(min_faults=5, fault_ratio=0.5, cooldown_seconds=10, probes=2)
    rates = {"notus": RateLimit(**rate)} if rate else {}
    return ProviderGovernor(
        fakeredis.FakeRedis(), breaker, rates, clock=lambda: clock().timestamp()
    )


def test_a_credential_mishap_fails_no_verification_and_opens_the_circuit(store, clock):
    ids = add(store, clock, 20)
    gov = governor_for(clock)
    adapter = ScriptedAdapter(
        "notus", [ProviderUnavailableError(ErrorCode.AUTH_FAILED, "HTTP 401 from notus")]
    )
    poller = engine(store, adapter, clock, governor=gov)
    poller.poll_batch(ids)
    assert gov.status("notus").state is CircuitState.OPEN
    calls = adapter.calls
    # While open nothing is called and nothing is counted against the rows.
    for _ in range(5):
        clock.advance(1)
        report = poller.poll_batch(ids)
        assert report.outcomes[Outcome.DEFERRED] == 20
    assert adapter.calls == calls
    assert all(row.stored.permanent_error_count == 0 for row in store.rows.values())
    assert all(row.last_error_code == ErrorCode.CIRCUIT_OPEN for row in store.rows.values())
    # The key is fixed: after the cooldown the probes close the circuit.
    adapter.steps = [result("in_review")]
    clock.advance(10)
    probe = poller.poll_batch(ids)
    assert probe.polled == 2
    assert gov.status("notus").state is CircuitState.CLOSED
    final = poller.poll_batch(ids)
    assert final.outcomes[Outcome.TRANSITION] == 18
    assert not any(row.stored.status is S.FAILED for row in store.rows.values())


def test_a_probe_the_provider_answers_404_still_closes_the_circuit(store, clock):
    ids = add(store, clock, 4)
    gov = governor_for(clock)
    gov.record("notus", successes=0, faults=5)
    clock.advance(10.5)  # the cooldown is over: probes may go
    adapter = ScriptedAdapter(
        "notus", [PermanentProviderError(ErrorCode.NOT_FOUND, "HTTP 404", http_status=404)]
    )
    engine(store, adapter, clock, governor=gov).poll_batch(ids)
    # The provider answered: it is up, whatever it said about these verifications.
    assert gov.status("notus").state is CircuitState.CLOSED


def test_a_429_slows_the_provider_for_the_fleet(store, clock):
    ids = add(store, clock, 4)
    gov = governor_for(clock)
    adapter = ScriptedAdapter(
        "notus", [RateLimitedError(ErrorCode.RATE_LIMITED, "429", retry_after=30)]
    )
    poller = engine(store, adapter, clock, governor=gov)
    poller.poll_batch(ids[:1])
    report = poller.poll_batch(ids[1:])
    assert report.outcomes[Outcome.DEFERRED] == 3
    assert adapter.calls == 1


def test_the_rate_limit_defers_what_it_cannot_grant(store, clock):
    ids = add(store, clock, 30)
    gov = governor_for(clock, per_second=5, burst=10)
    adapter = ScriptedAdapter("notus", [result("pending")])
    report = engine(store, adapter, clock, governor=gov).poll_batch(ids)
    assert report.polled == 10
    assert report.outcomes[Outcome.DEFERRED] == 20
    deferred = [row for row in store.rows.values() if row.last_error_code]
    assert {row.last_error_code for row in deferred} == {ErrorCode.RATE_LIMITED}


def test_answers_are_stored_even_when_redis_fails_to_count_them(store, clock):
    ids = add(store, clock, 3)
    gov = governor_for(clock)

    def unreachable(*args, **kwargs):
        raise redis.ConnectionError("Redis went away after the calls")

    gov.record = unreachable  # type: ignore[method-assign]
    adapter = ScriptedAdapter("notus", [result("approved")])
    report = engine(store, adapter, clock, governor=gov).poll_batch(ids)
    assert report.transitions == 3
    assert {store.rows[i].stored.status for i in ids} == {S.APPROVED}


def test_a_hostile_retry_after_pauses_the_provider_no_longer_than_the_error_cap(store, clock):
    ids = add(store, clock, 2)
    gov = governor_for(clock)
    adapter = ScriptedAdapter(
        "notus", [RateLimitedError(ErrorCode.RATE_LIMITED, "429", retry_after=86_400)]
    )
    engine(store, adapter, clock, governor=gov).poll_batch(ids[:1])
    assert gov.status("notus").paused_for_seconds <= POLICY.error_backoff.cap
    clock.advance(POLICY.error_backoff.cap + 1)
    assert gov.admit("notus", 1).granted == 1


# -- publishing right after the write --------------------------------------------------------


class RecordingPublisher:
    """Records what it was asked to publish and what the store held at that moment."""

    def __init__(self, store: MemoryStore, fail: BaseException | None = None) -> None:
        self.store = store
        self.fail = fail
        self.batches: list[list[str]] = []
        self.committed_then: list[int] = []

    def publish_committed(self, entries):
        self.committed_then.append(len(self.store.events))
        self.batches.append([entry.event_id for entry in entries])
        if self.fail is not None:
            raise self.fail
        return RelayReport(len(entries), 0, None)


def test_a_batch_hands_its_committed_events_to_the_publisher_once(store, clock):
    ids = add(store, clock, 4)
    publisher = RecordingPublisher(store)
    adapter = ScriptedAdapter("notus", [result("in_review")])
    report = engine(store, adapter, clock, publisher=publisher).poll_batch(ids)
    assert publisher.batches == [report.event_ids] and len(report.event_ids) == 4
    assert publisher.committed_then == [4]  # after the write, never before
    assert (report.published, report.left_for_relay, report.publish_failed) == (4, 0, False)
    unchanged = engine(store, ScriptedAdapter("notus", [result("in_review")]), clock)
    assert unchanged.poll_batch(ids).left_for_relay == 0


def test_a_failing_publisher_leaves_the_events_to_the_relay(store, clock):
    ids = add(store, clock, 2)
    publisher = RecordingPublisher(store, fail=redis.ConnectionError("gone"))
    adapter = ScriptedAdapter("notus", [result("approved")])
    report = engine(store, adapter, clock, publisher=publisher).poll_batch(ids)
    assert report.transitions == 2  # committed all the same
    assert (report.published, report.left_for_relay, report.publish_failed) == (0, 2, True)


def test_the_governor_hears_the_answers_even_when_the_write_fails(store, clock):
    ids = add(store, clock, 5)
    gov = governor_for(clock)

    def database_down(decisions):
        raise ConnectionError("database went away")

    store.apply = database_down  # type: ignore[method-assign]
    adapter = ScriptedAdapter("notus", [ProviderUnavailableError(ErrorCode.TIMEOUT, "timed out")])
    with pytest.raises(ConnectionError):
        engine(store, adapter, clock, governor=gov).poll_batch(ids)
    assert gov.status("notus").state is CircuitState.OPEN  # its five faults were counted
