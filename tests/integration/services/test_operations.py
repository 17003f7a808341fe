"""Poll-now nudges and operator re-opening, on both databases with a real Redis."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from sqlalchemy import select

from models import Transition, Verification
from tests.doubles import FakeClock
from worker.domain.decisions import PollPolicy
from worker.domain.errors import InvalidExternalIdError, UnknownProviderError
from worker.domain.statuses import VerificationStatus as S
from worker.services.operations import NudgeOutcome, PollNotEnqueued, poll_now, reopen
from worker.services.tracking import track_verification

UUID = "550e8400-e29b-41d4-a716-446655440000"


@pytest.fixture
def client(redis_url):
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


class RecordingQueue:
    """A PollQueue that keeps what it was sent (or refuses it, like a broker that is down)."""

    def __init__(self, refuse: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.refuse = refuse

    def enqueue_polls(self, verification_ids):
        if self.refuse:
            raise ConnectionError("broker down")
        self.batches.append(list(verification_ids))


@pytest.fixture
def queue():
    return RecordingQueue()


def set_row(db, verification_id, **values):
    with db.session() as session, session.begin():
        row = session.get(Verification, verification_id)
        for name, value in values.items():
            setattr(row, name, value)


def test_a_nudge_claims_the_verification_and_repeats_collapse(db, client, queue):
    clock = FakeClock()
    tracked = track_verification(db, "predicate", UUID, now=clock.now)
    set_row(db, tracked.verification_id, next_poll_at=clock.now + timedelta(hours=1))
    first = poll_now(db, client, queue, "predicate", UUID.upper(), now=clock.now, lease_seconds=60)
    assert (first.outcome, first.verification_id) == (
        NudgeOutcome.SCHEDULED,
        tracked.verification_id,
    )
    with db.session() as session:
        leased = session.get(Verification, tracked.verification_id).next_poll_at
    assert leased == clock.now + timedelta(seconds=60)  # claimed: no sweep polls it twice
    again = poll_now(db, client, queue, "predicate", UUID, now=clock.now, lease_seconds=60)
    assert again.outcome is NudgeOutcome.COLLAPSED
    assert queue.batches == [[tracked.verification_id]]  # one poll enqueued, not two


def test_a_claim_the_queue_refuses_is_said_and_left_to_its_lease(db, client):
    clock = FakeClock()
    tracked = track_verification(db, "notus", "n-1", now=clock.now)
    with pytest.raises(PollNotEnqueued) as refused:
        poll_now(
            db, client, RecordingQueue(refuse=True), "notus", "n-1", now=clock.now, lease_seconds=60
        )
    assert refused.value.verification_id == tracked.verification_id
    with db.session() as session:
        leased = session.get(Verification, tracked.verification_id).next_poll_at
    assert leased == clock.now + timedelta(seconds=60)  # the sweep polls it when the lease ends


def test_nudging_unknown_or_terminal_verifications_says_so(db, client, queue):
    clock = FakeClock()
    done = track_verification(db, "notus", "done-1", now=clock.now)
    set_row(db, done.verification_id, status=S.APPROVED, next_poll_at=None)
    assert poll_now(
        db, client, queue, "notus", "done-1", now=clock.now, lease_seconds=60
    ).outcome is (NudgeOutcome.TERMINAL)
    assert poll_now(
        db, client, queue, "notus", "nope", now=clock.now, lease_seconds=60
    ).outcome is (NudgeOutcome.UNKNOWN)
    with pytest.raises(UnknownProviderError):
        poll_now(db, client, queue, "veriff", "x", now=clock.now, lease_seconds=60)
    with pytest.raises(InvalidExternalIdError):
        poll_now(db, client, queue, "notus", "../x", now=clock.now, lease_seconds=60)


def test_reopening_a_failed_verification_goes_back_to_where_it_was(db):
    clock = FakeClock()
    tracked = track_verification(db, "notus", "failed-1", now=clock.now)
    vid = tracked.verification_id
    with db.session() as session, session.begin():
        session.add(
            Transition(
                verification_id=vid,
                version=2,
                from_status=S.IN_REVIEW,
                to_status=S.FAILED,
                reason="provider_error",
                error_code="not_found",
                occurred_at=clock.now,
            )
        )
        row = session.get(Verification, vid)
        row.status, row.version, row.next_poll_at = S.FAILED, 2, None
    clock.advance(3600)
    assert reopen(db, "notus", "failed-1", now=clock.now, policy=PollPolicy()) == (vid, S.IN_REVIEW)
    with db.session() as session:
        row = session.get(Verification, vid)
        last = session.scalars(
            select(Transition).where(Transition.verification_id == vid).order_by(Transition.id)
        ).all()[-1]
    assert (row.status, row.next_poll_at, row.polling_since) == (S.IN_REVIEW, clock.now, clock.now)
    assert (last.from_status, last.to_status, last.reason) == (
        S.FAILED,
        S.IN_REVIEW,
        "operator_retry",
    )
    with pytest.raises(ValueError, match="failed or timed_out"):
        reopen(db, "notus", "failed-1", now=clock.now, policy=PollPolicy())
    assert reopen(db, "notus", "never-tracked", now=clock.now, policy=PollPolicy()) is None


def test_a_batch_of_nudges_is_one_path_with_every_outcome(db, client, queue):
    from worker.services.operations import poll_now_many

    clock = FakeClock()
    ids = {}
    for name in ("a", "b", "c", "done"):
        tracked = track_verification(db, "gu1", f"val-{name}", now=clock.now)
        ids[name] = tracked.verification_id
        set_row(db, tracked.verification_id, next_poll_at=clock.now + timedelta(hours=1))
    set_row(db, ids["done"], status=S.APPROVED, next_poll_at=None)
    poll_now(db, client, queue, "gu1", "val-c", now=clock.now, lease_seconds=60)
    queue.batches.clear()
    nudges = poll_now_many(
        db,
        client,
        queue,
        "gu1",
        ["val-a", "val-b", "val-a", "val-c", "val-done", "val-nope", "../bad"],
        now=clock.now,
        lease_seconds=60,
        batch_size=1,
    )
    outcomes = {key: nudge.outcome for key, nudge in nudges.items()}
    assert outcomes == {
        "val-a": NudgeOutcome.SCHEDULED,
        "val-b": NudgeOutcome.SCHEDULED,
        "val-c": NudgeOutcome.COLLAPSED,
        "val-done": NudgeOutcome.TERMINAL,
        "val-nope": NudgeOutcome.UNKNOWN,
        "../bad": NudgeOutcome.UNKNOWN,
    }
    assert queue.batches == [[ids["a"]], [ids["b"]]]  # batches of batch_size, a once


def test_hints_are_recorded_per_verification_with_a_ttl(client):
    from datetime import UTC, datetime

    from worker.services.hints import hint_count, last_hints, record_hints

    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert record_hints(client, "gu1", [1, 2, 2], now, ttl_seconds=100) == 2
    assert last_hints(client, [1, 2, 3]) == {1: now.timestamp(), 2: now.timestamp()}
    assert hint_count(client, "gu1") == 2 and hint_count(client, "notus") == 0
    assert 0 < client.ttl("kyc-poller:hint:1") <= 100
