"""Re-verification: an approval that expires is watched, and due exactly once (pure rules)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from tests.doubles import NO_TRANSPORT, FakeClock, ScriptedAdapter, result, run_coroutine
from worker.adapters.memory_store import MemoryStore
from worker.config import Settings
from worker.domain.decisions import Deferred, Outcome, PollPolicy, StoredVerification, decide
from worker.domain.errors import ErrorCode, ProviderUnavailableError
from worker.domain.events import REVERIFICATION_DUE
from worker.domain.results import PollResult, ReverificationFacts
from worker.domain.statuses import VerificationStatus as S
from worker.domain.watch import decide_watch
from worker.services.polling import PollEngine

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
DAY = 86400.0
POLICY = PollPolicy(reverification_check_seconds=DAY, max_age_seconds=30 * DAY)


def stored(status: S = S.IN_REVIEW, **changes) -> StoredVerification:
    return StoredVerification(
        id=9,
        provider="gu1",
        external_id="val-9",
        verification_type=None,
        status=status,
        provider_status=status.value,
        version=4,
        created_at=NOW - timedelta(days=1),
        **changes,
    )


def approval(facts: ReverificationFacts | None, status: S = S.APPROVED) -> PollResult:
    return PollResult(status, status.value, {"id": "val-9"}, {"aml": "clear"}, reverification=facts)


def run(row: StoredVerification, observation):
    return decide(row, observation, NOW, POLICY, random.Random(1))


def watch(row: StoredVerification, observation):
    return decide_watch(row, observation, NOW, POLICY, random.Random(1))


def watched(expires_in: float, **changes) -> StoredVerification:
    return stored(
        S.APPROVED,
        expires_at=NOW + timedelta(seconds=expires_in),
        finished_at=NOW - timedelta(days=100),
        **changes,
    )


def test_an_approval_with_an_expiry_is_watched_until_then():
    expiry = NOW + timedelta(days=365)
    decision = decide(
        stored(), approval(ReverificationFacts(False, expiry)), NOW, POLICY, random.Random(1)
    )
    update = decision.update
    assert decision.outcome is Outcome.TRANSITION and update.status is S.APPROVED
    assert update.expires_at == expiry and update.finished_at == NOW
    assert update.next_poll_at is not None
    assert 0.9 * DAY <= (update.next_poll_at - NOW).total_seconds() <= 1.1 * DAY
    assert (
        decision.event is not None and decision.event["event_type"] == "verification.status_changed"
    )


def test_an_expiry_nearer_than_the_pace_is_checked_at_the_expiry():
    expiry = NOW + timedelta(hours=2)
    decision = decide(
        stored(), approval(ReverificationFacts(False, expiry)), NOW, POLICY, random.Random(1)
    )
    assert decision.update.next_poll_at == expiry


def test_an_approval_already_needing_reverification_is_due_at_the_next_check():
    # Its event needs a write of its own (one write, at most one event): the next sweep.
    decision = run(stored(), approval(ReverificationFacts(True)))
    assert decision.update.expires_at == NOW and decision.update.next_poll_at == NOW


def test_an_approval_without_facts_stays_terminal_and_unpolled():
    for facts in (None, ReverificationFacts(False, None)):
        decision = run(stored(), approval(facts))
        assert decision.update.next_poll_at is None and decision.update.expires_at is None


def test_facts_on_another_status_are_not_an_approvals():
    facts = ReverificationFacts(True, NOW + timedelta(days=7))
    for status in (S.PENDING, S.IN_REVIEW, S.REJECTED):
        decision = decide(
            stored(S.IN_PROGRESS), approval(facts, status), NOW, POLICY, random.Random(1)
        )
        assert decision.update.expires_at is None


def test_a_watched_check_keeps_the_status_the_answer_and_the_finish_time():
    row = watched(10 * DAY)
    assert row.watched
    answer = approval(ReverificationFacts(False, row.expires_at))
    decision = watch(row, answer)
    update = decision.update
    assert decision.outcome is Outcome.UNCHANGED and decision.event is None
    assert decision.transition is None
    assert (update.status, update.finished_at, update.result) == (S.APPROVED, row.finished_at, None)
    assert update.next_poll_at is not None and update.next_poll_at <= NOW + timedelta(days=1.1)
    assert update.reverification_event_at is None


def test_a_later_date_moves_the_watch_and_no_date_keeps_it():
    row = watched(DAY / 2)
    later = NOW + timedelta(days=365)
    moved = decide_watch(
        row, approval(ReverificationFacts(False, later)), NOW, POLICY, random.Random(1)
    )
    assert moved.update.expires_at == later
    kept = watch(row, approval(None))
    assert kept.update.expires_at == row.expires_at
    assert kept.update.next_poll_at == row.expires_at  # never after the time


def test_the_date_reached_is_due_once_with_its_own_event():
    row = watched(-1)
    decision = watch(row, approval(None))
    event = decision.event
    assert event is not None and event["event_type"] == REVERIFICATION_DUE
    assert event["verification_version"] == row.version + 1
    assert event["reverification"] == {
        "trigger": "expired",
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
    }
    assert (event["from_status"], event["to_status"], event["reason"]) == (
        "approved",
        "approved",
        "provider",
    )
    assert event["summary"] == {"aml": "clear"}
    assert decision.update.next_poll_at is None
    assert decision.update.reverification_event_at == NOW
    after = StoredVerification(**{**row.__dict__, "reverification_event_at": NOW})
    assert not after.watched  # the engine skips it from now on: no second event


def test_the_flag_is_due_before_the_date():
    row = watched(100 * DAY)
    decision = watch(row, approval(ReverificationFacts(True)))
    assert decision.event is not None
    assert decision.event["reverification"]["trigger"] == "needs_reverification"


def test_the_date_is_due_even_when_the_provider_does_not_answer():
    row = watched(-60)
    down = ProviderUnavailableError(ErrorCode.TIMEOUT, "timed out")
    decision = watch(row, down)
    assert decision.outcome is Outcome.ERROR and decision.event is not None
    assert decision.event["summary"] == {}
    deferred = decide_watch(
        row, Deferred(NOW + timedelta(seconds=5)), NOW, POLICY, random.Random(1)
    )
    assert deferred.event is not None


def test_errors_and_deferrals_before_the_date_keep_watching_without_failing():
    row = watched(10 * DAY)
    down = ProviderUnavailableError(ErrorCode.TIMEOUT, "timed out")
    errored = watch(row, down)
    assert errored.event is None and errored.update.status is S.APPROVED
    assert errored.update.last_error_code is ErrorCode.TIMEOUT
    assert errored.update.next_poll_at is not None
    until = NOW + timedelta(seconds=30)
    deferred = watch(row, Deferred(until))
    assert deferred.update.next_poll_at == until and deferred.update.total_polls == row.total_polls


def test_a_pace_of_zero_checks_only_at_the_expiry():
    policy = PollPolicy(reverification_check_seconds=0)
    row = watched(5 * DAY)
    decision = decide_watch(row, approval(None), NOW, policy, random.Random(1))
    assert decision.update.next_poll_at == row.expires_at


def test_only_a_watched_approval_is_decided_by_the_watch_rule():
    with pytest.raises(ValueError, match="watched"):
        watch(stored(S.APPROVED), approval(None))
    assert not watched(DAY, reverification_event_at=NOW).watched


def test_the_pace_is_a_setting():
    assert Settings.from_env({}).policy.reverification_check_seconds == DAY
    env = {"KYC_REVERIFICATION_CHECK_SECONDS": "0"}
    assert Settings.from_env(env).policy.reverification_check_seconds == 0


def test_the_engine_checks_watched_approvals_past_the_maximum_age_and_emits_once():
    clock = FakeClock(NOW)
    store = MemoryStore()
    vid = store.add(
        "gu1",
        "val-1",
        now=clock() - timedelta(days=400),
        status=S.APPROVED,
        expires_at=clock() + timedelta(days=1),
    )
    adapter = ScriptedAdapter("gu1", [result("approved", "approved")])
    engine = PollEngine(
        store,
        {"gu1": adapter},
        NO_TRANSPORT,
        POLICY,
        runner=run_coroutine,
        clock=clock,
        rng=random.Random(1),
    )
    report = engine.poll_batch([vid])  # 400 days old: checked, not timed out
    assert (report.polled, report.transitions) == (1, 0)
    assert store.rows[vid].stored.status is S.APPROVED and store.events == []
    clock.advance(DAY)
    report = engine.poll_batch([vid])
    assert len(report.event_ids) == 1
    assert [e["event_type"] for e in store.events] == [REVERIFICATION_DUE]
    assert engine.poll_batch([vid]).skipped == 1
    assert adapter.calls == 2 and len(store.events) == 1


def test_a_watched_check_records_the_providers_latest_word_and_keeps_the_status():
    row = watched(10 * DAY)
    answer = PollResult(S.EXPIRED, "expired", {}, reverification=None)
    decision = watch(row, answer)
    assert (decision.update.status, decision.update.provider_status) == (S.APPROVED, "expired")


def test_an_unknown_word_on_a_watched_approval_is_counted_under_that_word():
    from worker.adapters.http import unknown_status

    clock = FakeClock(NOW)
    store = MemoryStore()
    vid = store.add(
        "gu1", "val-2", now=clock(), status=S.APPROVED, expires_at=clock() + timedelta(days=9)
    )
    seen: list[tuple[str, str]] = []

    class Hook:
        def unknown_status(self, provider, word_label):
            seen.append((provider, word_label))

        def call_finished(self, *args):
            return None

        def decision_applied(self, decision):
            return None

        def polls_deferred(self, *args):
            return None

        def circuit_changed(self, *args):
            return None

    engine = PollEngine(
        store,
        {"gu1": ScriptedAdapter("gu1", [unknown_status("gu1", "renewal_pending")])},
        NO_TRANSPORT,
        POLICY,
        runner=run_coroutine,
        clock=clock,
        observer=Hook(),
    )
    engine.poll_batch([vid])
    assert seen == [("gu1", "renewal_pending")]
    row = store.rows[vid]
    assert (row.stored.status, row.stored.provider_status) == (S.APPROVED, "renewal_pending")
    assert row.next_poll_at is not None and store.events == []
