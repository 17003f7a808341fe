import threading

import pytest
from sqlalchemy import func, select

from models import Verification
from worker.domain.errors import (
    InvalidExternalIdError,
    TrackingCeilingError,
    TrackingConflictError,
    UnknownProviderError,
)
from worker.services import tracking
from worker.services.tracking import OpenCeiling, track_verification

PREDICATE_ID = "550e8400-e29b-41d4-a716-446655440000"


def count_rows(db) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Verification))


def test_tracking_stores_a_pending_verification_due_now(db):
    tracked = track_verification(db, "notus", "sess-1")
    assert tracked.created and tracked.status == "pending"
    with db.session() as session:
        row = session.get(Verification, tracked.verification_id)
    assert (row.provider, row.external_id, row.status, row.version) == (
        "notus",
        "sess-1",
        "pending",
        1,
    )
    assert row.next_poll_at is not None and row.next_poll_at == row.created_at


def test_tracking_twice_keeps_one_row(db):
    first = track_verification(db, "gu1", "val-1")
    second = track_verification(db, "gu1", "val-1")
    assert second.verification_id == first.verification_id
    assert (first.created, second.created) == (True, False)
    assert count_rows(db) == 1
    # The same id at another provider is another verification.
    assert track_verification(db, "notus", "val-1").verification_id != first.verification_id


def test_concurrent_tracking_of_the_same_verification_keeps_one_row(db):
    results = []
    barrier = threading.Barrier(4)

    def track():
        barrier.wait()
        results.append(track_verification(db, "bank131", "7"))

    threads = [threading.Thread(target=track) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len({r.verification_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert count_rows(db) == 1


def test_predicate_type_defaults_to_individual_and_is_stored(db):
    individual = track_verification(db, "predicate", PREDICATE_ID)
    with db.session() as session:
        assert session.get(Verification, individual.verification_id).verification_type == (
            "individual"
        )
    other = "6fa459ea-ee8a-3ca4-894e-db77e160355e"
    business = track_verification(db, "predicate", other, "business")
    with db.session() as session:
        assert session.get(Verification, business.verification_id).verification_type == ("business")


def test_retracking_with_another_type_is_a_clear_conflict(db):
    track_verification(db, "predicate", PREDICATE_ID, "business")
    with pytest.raises(TrackingConflictError, match="already tracked as type 'business'"):
        track_verification(db, "predicate", PREDICATE_ID, "individual")


@pytest.mark.parametrize(
    ("provider", "external_id", "vtype", "error", "message"),
    [
        ("veriff", "abc", None, UnknownProviderError, "veriff"),
        ("", "abc", None, UnknownProviderError, "notus"),
        (None, "abc", None, ValueError, "provider must be a string"),
        ("notus", "", None, InvalidExternalIdError, "empty"),
        ("notus", "../../etc/passwd", None, InvalidExternalIdError, "'..'"),
        ("notus", "a/b", None, InvalidExternalIdError, "plain token"),
        ("notus", "a b", None, InvalidExternalIdError, "plain token"),
        ("notus", "a\r\nX-Injected: 1", None, InvalidExternalIdError, "plain token"),
        ("notus", "x" * 129, None, InvalidExternalIdError, "at most 128"),
        ("predicate", PREDICATE_ID, "corporate", ValueError, "corporate"),
        ("predicate", "not-a-uuid", None, ValueError, "UUID"),
    ],
)
def test_bad_requests_are_rejected_and_nothing_is_stored(
    db, provider, external_id, vtype, error, message
):
    with pytest.raises(error, match=message):
        track_verification(db, provider, external_id, vtype)
    assert count_rows(db) == 0


def test_the_upper_case_spelling_of_a_predicate_uuid_is_the_same_verification(db):
    first = track_verification(db, "predicate", PREDICATE_ID)
    again = track_verification(db, "predicate", PREDICATE_ID.upper())
    assert again.verification_id == first.verification_id and again.created is False
    assert count_rows(db) == 1
    with db.session() as session:
        assert session.get(Verification, first.verification_id).external_id == PREDICATE_ID


def set_terminal(db, verification_id):
    with db.session() as session, session.begin():
        row = session.get(Verification, verification_id)
        row.status, row.next_poll_at = "approved", None


def test_a_tracking_flood_beyond_the_ceiling_is_refused_with_nothing_stored(db):
    ceiling = OpenCeiling({"notus": 10})
    stored = [track_verification(db, "notus", f"flood-{n}", ceiling=ceiling) for n in range(10)]
    for n in range(10, 15):
        with pytest.raises(TrackingCeilingError, match="NOTUS_MAX_OPEN_VERIFICATIONS"):
            track_verification(db, "notus", f"flood-{n}", ceiling=ceiling)
    assert count_rows(db) == 10
    # Already tracked: still answered. Another provider: its own ceiling (none here).
    again = track_verification(db, "notus", "flood-3", ceiling=ceiling)
    assert (again.verification_id, again.created) == (stored[3].verification_id, False)
    assert track_verification(db, "gu1", "other", ceiling=ceiling).created
    # A decision frees a place; a fresh ceiling (another process) counts what is there.
    set_terminal(db, stored[0].verification_id)
    assert track_verification(db, "notus", "flood-10", ceiling=ceiling).created
    with pytest.raises(TrackingCeilingError):
        track_verification(db, "notus", "flood-11", ceiling=OpenCeiling({"notus": 10}))


def test_far_below_the_ceiling_tracking_does_not_count_every_time(db, monkeypatch):
    counts = []
    real = tracking.count_open
    monkeypatch.setattr(tracking, "count_open", lambda *a: counts.append(1) or real(*a))
    ceiling = OpenCeiling({"notus": 1000}, clock=lambda: 0.0)
    for n in range(20):
        track_verification(db, "notus", f"calm-{n}", ceiling=ceiling)
    assert len(counts) == 1  # one exact count, then its own inserts added up
    ceiling = OpenCeiling({"notus": 22}, clock=lambda: 0.0)
    for n in range(2):
        track_verification(db, "notus", f"near-{n}", ceiling=ceiling)  # 20 of 22: near
    assert len(counts) == 3  # near the ceiling: counted every time
