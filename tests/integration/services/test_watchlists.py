"""The operator's watchlists and the merged history, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, update

from models import Transition, Verification, VerificationAction, utcnow
from worker.adapters.sql_store import insert_verification_if_absent
from worker.domain.statuses import VerificationStatus as S
from worker.services.timeline import history_with_actions
from worker.services.watchlists import reverifications, unknown_statuses


def add(db, provider, external_id, now, **values) -> int:
    with db.session() as session, session.begin():
        vid, _ = insert_verification_if_absent(
            session, provider=provider, external_id=external_id, verification_type=None, now=now
        )
        if values:
            session.execute(update(Verification).where(Verification.id == vid).values(**values))
    return vid


def test_unknown_words_are_grouped_by_provider_and_word_most_first(db):
    now = utcnow()
    unknown = {"last_error_code": "unknown_status", "last_polled_at": now}
    a = [add(db, "gu1", f"a{i}", now, provider_status="on_hold", **unknown) for i in range(3)]
    add(db, "gu1", "b1", now, provider_status="paused", **unknown)
    add(db, "notus", "n1", now, provider_status="ON_HOLD", **unknown)
    add(db, "gu1", "ok", now, provider_status="pending")  # a known word: not listed
    add(db, "gu1", "e1", now, provider_status="pending", last_error_code="timeout")
    words = unknown_statuses(db)
    assert [(w.provider, w.provider_status, w.verifications) for w in words] == [
        ("gu1", "on_hold", 3),
        ("gu1", "paused", 1),
        ("notus", "ON_HOLD", 1),
    ]
    assert [e.verification_id for e in words[0].examples] == a
    assert words[0].last_polled_at == now
    assert [w.provider for w in unknown_statuses(db, provider="notus")] == ["notus"]
    assert len(unknown_statuses(db, limit=1)) == 1
    assert unknown_statuses(db, examples=0)[0].examples == []


def test_reverifications_due_and_expiring(db):
    now = utcnow()
    soon = add(db, "gu1", "soon", now, status=S.APPROVED, expires_at=now + timedelta(days=3))
    later = add(db, "gu1", "later", now, status=S.APPROVED, expires_at=now + timedelta(days=90))
    due = add(
        db,
        "gu1",
        "due",
        now,
        status=S.APPROVED,
        expires_at=now - timedelta(days=1),
        reverification_event_at=now - timedelta(hours=1),
    )
    listed = reverifications(db, now=now, within=timedelta(days=30))
    assert [e.verification_id for e in listed.due] == [due]
    assert [e.verification_id for e in listed.expiring] == [soon]
    assert (listed.due_total, listed.expiring_total) == (1, 1)
    wide = reverifications(db, now=now, within=timedelta(days=365))
    assert [e.verification_id for e in wide.expiring] == [soon, later]
    assert wide.to_json()["expiring"][0]["due"] is False
    assert reverifications(db, now=now, provider="notus").due == []


def test_history_merges_actions_between_transitions_by_time(db):
    now = utcnow()
    vid = add(db, "gu1", "h1", now)
    with db.session() as session, session.begin():
        session.execute(
            insert(Transition),
            [
                {
                    "verification_id": vid,
                    "version": 2,
                    "from_status": "pending",
                    "to_status": "in_progress",
                    "reason": "provider",
                    "occurred_at": now,
                },
                {
                    "verification_id": vid,
                    "version": 5,
                    "from_status": "in_progress",
                    "to_status": "approved",
                    "reason": "provider",
                    "occurred_at": now + timedelta(hours=2),
                },
            ],
        )
        session.execute(
            insert(VerificationAction),
            [
                {
                    "verification_id": vid,
                    "verification_version": 4,
                    "kind": "sync",
                    "outcome": "server_error",
                    "http_status": 503,
                    "occurred_at": now + timedelta(hours=1),
                },
                {
                    "verification_id": vid,
                    "verification_version": 5,
                    "kind": "sync",
                    "outcome": "accepted",
                    "http_status": 200,
                    "occurred_at": now + timedelta(hours=2),
                },
            ],
        )
    entries = history_with_actions(db, vid)
    assert [(e.entry, e.to_json().get("outcome") or e.to_json()["to_status"]) for e in entries] == [
        ("transition", "in_progress"),
        ("action", "server_error"),
        ("action", "accepted"),  # the sync comes before the poll it was written with
        ("transition", "approved"),
    ]
    assert [e.entry for e in history_with_actions(db, vid, limit=2)] == ["action", "transition"]
