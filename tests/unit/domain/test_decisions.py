"""The poll rules as pure functions: no database, no HTTP."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from worker.domain.backoff import BackoffSettings
from worker.domain.decisions import (
    Deferred,
    Outcome,
    PollPolicy,
    StoredVerification,
    decide,
    reopened,
    storable,
)
from worker.domain.errors import (
    ErrorCode,
    PermanentProviderError,
    ProviderUnavailableError,
    TransientProviderError,
    TransitionReason,
)
from worker.domain.results import PollResult
from worker.domain.statuses import VerificationStatus as S

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
POLICY = PollPolicy(
    poll_backoff=BackoffSettings(base=5.0, cap=300.0, floor=1.0),
    error_backoff=BackoffSettings(base=10.0, cap=600.0, floor=2.0),
    max_age_seconds=3600.0,
    max_permanent_errors=3,
    max_stored_payload_bytes=4096,
)


def stored(status: S = S.PENDING, **changes) -> StoredVerification:
    base = StoredVerification(
        id=7,
        provider="notus",
        external_id="sess-1",
        verification_type=None,
        status=status,
        provider_status=status.value.upper(),
        version=3,
        created_at=NOW - timedelta(minutes=5),
    )
    return StoredVerification(**{**base.__dict__, **changes})


def answer(status: S, word: str | None = None, **kwargs) -> PollResult:
    return PollResult(status, word or status.value.upper(), kwargs.pop("payload", {}), **kwargs)


def run(row: StoredVerification, observation, now: datetime = NOW):
    return decide(row, observation, now, POLICY, random.Random(1))


def test_unchanged_answer_counts_the_poll_and_follows_the_status_schedule():
    decision = run(stored(poll_attempts=2, total_polls=9), answer(S.PENDING))
    assert decision.outcome is Outcome.UNCHANGED
    assert decision.transition is None and decision.event is None
    update = decision.update
    assert (update.poll_attempts, update.total_polls, update.error_count) == (3, 10, 0)
    # A user still completing the flow (5 min in pending): every minute (only a status's
    # first wait is jittered).
    assert update.next_poll_at == NOW + timedelta(seconds=60)
    assert update.result == {"response": {}, "summary": {}}


def test_the_schedule_follows_time_in_status_and_status():
    long_pending = stored(status_since=NOW - timedelta(hours=2))
    later = run(long_pending, answer(S.PENDING)).update.next_poll_at
    assert later == NOW + timedelta(seconds=300)
    review = run(stored(S.IN_REVIEW, status_since=NOW - timedelta(minutes=10)), answer(S.IN_REVIEW))
    assert review.update.next_poll_at == NOW + timedelta(seconds=230)


def test_the_legacy_backoff_is_a_mode():
    legacy = PollPolicy(schedule=None, poll_backoff=BackoffSettings(base=5.0, cap=300.0, floor=1.0))
    decision = decide(stored(poll_attempts=2), answer(S.PENDING), NOW, legacy, random.Random(1))
    assert NOW + timedelta(seconds=1) <= decision.update.next_poll_at <= NOW + timedelta(seconds=40)


def test_a_change_is_one_transition_and_one_event_at_the_next_version():
    decision = run(stored(), answer(S.IN_REVIEW, "IN_REVIEW"))
    assert decision.outcome is Outcome.TRANSITION
    assert decision.transition.version == 4
    assert (decision.transition.from_status, decision.transition.to_status) == (
        S.PENDING,
        S.IN_REVIEW,
    )
    event = decision.event
    assert event["verification_version"] == 4
    assert (event["from_status"], event["to_status"], event["reason"]) == (
        "pending",
        "in_review",
        "provider",
    )
    assert decision.update.poll_attempts == 0 and decision.update.next_poll_at is not None


def test_a_terminal_answer_stops_polling():
    decision = run(stored(S.IN_REVIEW), answer(S.APPROVED))
    assert decision.update.next_poll_at is None
    assert decision.update.finished_at == NOW
    assert decision.event["terminal"] is True


def test_permanent_errors_are_bounded_then_the_verification_fails():
    error = PermanentProviderError(ErrorCode.NOT_FOUND, "HTTP 404 from notus", http_status=404)
    first = run(stored(), error)
    assert first.outcome is Outcome.ERROR
    assert first.update.permanent_error_count == 1
    assert first.update.last_error_code is ErrorCode.NOT_FOUND
    last = run(stored(permanent_error_count=2, error_count=2), error)
    assert last.outcome is Outcome.TRANSITION
    assert last.transition.to_status is S.FAILED
    assert last.transition.reason is TransitionReason.PROVIDER_ERROR
    assert last.event["error_code"] == "not_found"


@pytest.mark.parametrize("code", [ErrorCode.AUTH_FAILED, ErrorCode.TIMEOUT, ErrorCode.SERVER_ERROR])
def test_provider_wide_faults_never_fail_a_verification(code):
    row = stored()
    error = ProviderUnavailableError(code, "provider down")
    for _ in range(50):
        decision = run(row, error)
        assert decision.outcome is Outcome.ERROR
        row = stored(
            error_count=decision.update.error_count,
            permanent_error_count=decision.update.permanent_error_count,
        )
    assert row.permanent_error_count == 0
    assert row.error_count == 50


def test_retry_after_raises_the_error_backoff():
    error = TransientProviderError(ErrorCode.RATE_LIMITED, "429", retry_after=500)
    decision = run(stored(), error)
    assert decision.update.next_poll_at == NOW + timedelta(seconds=500)


def test_a_deferral_changes_no_counter_and_moves_the_next_poll():
    row = stored(error_count=2, permanent_error_count=1, total_polls=5, poll_attempts=4)
    decision = run(row, Deferred(NOW + timedelta(seconds=30)))
    assert decision.outcome is Outcome.DEFERRED
    update = decision.update
    assert (update.error_count, update.permanent_error_count, update.total_polls) == (2, 1, 5)
    assert update.poll_attempts == 4
    assert update.next_poll_at == NOW + timedelta(seconds=30)
    assert update.last_error_code is ErrorCode.CIRCUIT_OPEN


def test_maximum_age_ends_timed_out_whatever_was_observed():
    row = stored(created_at=NOW - timedelta(hours=2))
    decision = run(row, answer(S.PENDING))
    assert decision.transition.to_status is S.TIMED_OUT
    assert decision.transition.reason is TransitionReason.TIMED_OUT
    assert decision.update.total_polls == row.total_polls


def test_related_ids_are_followed_only_when_they_are_plain_tokens():
    good = run(stored(), answer(S.CANCELLED, related_external_id="12345"))
    assert good.follow_up_external_id == "12345"
    assert good.event["related_external_id"] == "12345"
    bad = run(stored(), answer(S.CANCELLED, related_external_id="../../admin"))
    assert bad.follow_up_external_id is None


def test_provider_text_is_made_storable():
    payload = {"name\x00": "A\x00B", "bad": "\ud800x", "deep": [{"k": "v\x00"}]}
    decision = run(stored(), answer(S.PENDING, "PEN\x00DING", payload=payload))
    assert decision.update.provider_status == "PENDING"
    stored_payload = decision.update.result["response"]
    assert stored_payload == {"name": "AB", "bad": "?x", "deep": [{"k": "v"}]}
    json.dumps(stored_payload).encode("utf-8")


def test_oversized_payloads_are_replaced_by_a_marker_but_the_summary_stays():
    document = {"response": {"blob": "x" * 10_000}, "summary": {"document_type": "passport"}}
    result = storable(document, POLICY)
    assert result["response"]["_omitted"] == "too_large"
    assert result["response"]["bytes"] > 10_000
    assert result["summary"] == {"document_type": "passport"}


def test_nesting_beyond_the_encoder_is_stored_as_a_marker_not_raised():
    value: object = "\x00leaf"
    for _ in range(5_000):
        value = [value]
    result = storable({"response": {"v": value}, "summary": {}}, PollPolicy())
    assert result["response"] == {"_omitted": "unserializable"}


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_a_number_json_cannot_hold_is_stored_as_a_marker_not_raised(number):
    # The transport refuses these; should one come another way, the database would refuse
    # the batch's whole write, so the answer is replaced instead.
    result = storable({"response": {"score": number}, "summary": {}}, PollPolicy())
    assert result["response"] == {"_omitted": "unserializable"}


def test_cleaning_keeps_order_and_structure_of_nested_values():
    value = {"a": ["x\x00", {"b": ["\x00y", 1, None, True]}], "c": 2.5}
    result = storable({"response": value, "summary": {}}, PollPolicy())
    assert result["response"] == {"a": ["x", {"b": ["y", 1, None, True]}], "c": 2.5}


def test_a_failed_verification_is_reopened_with_its_own_event_and_a_fresh_age():
    old = stored(
        S.FAILED,
        created_at=NOW - timedelta(days=40),
        permanent_error_count=3,
        error_count=3,
    )
    decision = reopened(old, S.IN_REVIEW, NOW, POLICY)
    assert decision.transition.reason is TransitionReason.OPERATOR_RETRY
    assert (decision.event["from_status"], decision.event["to_status"]) == ("failed", "in_review")
    update = decision.update
    assert (update.next_poll_at, update.polling_since, update.status_since) == (NOW, NOW, NOW)
    assert update.permanent_error_count == 0 and update.finished_at is None
    # The age counts from the re-opening: the next poll is a poll, not a timeout.
    again = stored(S.IN_REVIEW, created_at=old.created_at, polling_since=NOW, version=4)
    assert run(again, answer(S.IN_REVIEW)).outcome is Outcome.UNCHANGED


@pytest.mark.parametrize(("status", "to"), [(S.APPROVED, S.PENDING), (S.FAILED, S.REJECTED)])
def test_only_failed_or_timed_out_verifications_reopen_and_only_to_a_polled_status(status, to):
    with pytest.raises(ValueError):
        reopened(stored(status), to, NOW, POLICY)


def test_a_change_marks_when_the_new_status_began():
    assert run(stored(), answer(S.IN_REVIEW)).update.status_since == NOW
    assert run(stored(), answer(S.PENDING)).update.status_since is None
