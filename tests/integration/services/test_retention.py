"""Retention: old published outbox rows deleted, long-terminal payloads removed; nothing else."""

import random
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from models import OutboxEvent, Transition, Verification, utcnow
from tests.doubles import FakeClock, ScriptedAdapter, result, run_coroutine
from worker.adapters.sql_store import SqlStore
from worker.domain.decisions import PollPolicy
from worker.services.polling import PollEngine
from worker.services.retention import Retention
from worker.services.tracking import insert_verification_if_absent

DAY = 24 * 3600
PERSONAL = {"first_name": "Ivan", "last_name": "Petrov", "passport": "4509 123456"}


def track(db, external_id):
    with db.session() as session, session.begin():
        vid, _ = insert_verification_if_absent(
            session, provider="gu1", external_id=external_id, verification_type=None, now=utcnow()
        )
    return vid


def drive(db, external_ids, final="approved"):
    """Poll verifications through in_review to `final`, answers carrying personal data."""
    answers = [
        result("in_review", payload={**PERSONAL, "status": "IN_REVIEW"}, summary={"step": 1}),
        result(final, payload={**PERSONAL, "status": final.upper()}, summary={"level": "basic"}),
    ]
    adapter = ScriptedAdapter("gu1", answers)
    engine = PollEngine(
        SqlStore(db),
        {"gu1": adapter},
        transport=None,
        policy=PollPolicy(),
        runner=run_coroutine,
        clock=FakeClock(utcnow()),
        rng=random.Random(1),
    )
    ids = []
    for external_id in external_ids:
        vid = track(db, external_id)
        adapter.calls = 0
        engine.poll_batch([vid])
        engine.poll_batch([vid])
        ids.append(vid)
    return ids


def set_rows(db, model, ids, **values):
    with db.session() as session, session.begin():
        session.execute(update(model).where(model.id.in_(ids)).values(**values))


def snapshot(db, vid):
    with db.session() as session:
        row = session.get(Verification, vid)
        history = session.scalars(
            select(Transition.to_status).where(Transition.verification_id == vid)
        ).all()
        return row.status, row.version, row.result, row.finished_at, list(history)


def test_personal_payload_removed_only_from_long_terminal_verifications(db):
    old_done, recent_done = drive(db, ["old-done", "recent-done"])
    (active,) = drive(db, ["active"], final="in_progress")
    now = utcnow()
    set_rows(db, Verification, [old_done], finished_at=now - timedelta(days=31))
    set_rows(db, Verification, [recent_done], finished_at=now - timedelta(days=29))
    set_rows(db, Verification, [active], created_at=now - timedelta(days=300))
    before = {vid: snapshot(db, vid) for vid in (old_done, recent_done, active)}
    assert before[old_done][2]["response"]["passport"] == PERSONAL["passport"]

    report = Retention(db, payload_max_age_seconds=30 * DAY, outbox_max_age_seconds=0).run()
    assert (report.payloads_removed, report.outbox_deleted, report.more_left) == (1, 0, False)

    status, version, stored, finished_at, history = snapshot(db, old_done)
    assert stored == {"summary": {"level": "basic"}}  # the answer gone, the summary kept
    assert (status, version, finished_at, history) == (
        before[old_done][0],
        before[old_done][1],
        before[old_done][3],
        before[old_done][4],
    )
    assert history == ["in_review", "approved"]
    assert snapshot(db, recent_done) == before[recent_done]
    assert snapshot(db, active) == before[active]
    # Nothing left to do: a second run changes nothing.
    assert Retention(db, payload_max_age_seconds=30 * DAY).remove_payloads() == (0, False)


def test_payload_removal_handles_odd_results_and_batches(db):
    ids = [track(db, f"v{n}") for n in range(7)]
    long_ago = utcnow() - timedelta(days=90)
    set_rows(db, Verification, ids, status="approved", finished_at=long_ago, next_poll_at=None)
    results = [
        {"response": {"name": "A"}, "summary": {}},
        {"response": None, "summary": {"x": 1}},  # a JSON null answer is removed too
        {"response": {"_omitted": "too_large", "bytes": 999999}, "summary": {"y": 2}},
        {"summary": {"done": True}},  # removed before
        None,  # never answered
        {"response": [1, 2, 3]},
        {"response": "text", "summary": {"z": 3}, "other": "kept"},
    ]
    with db.session() as session, session.begin():
        for vid, stored in zip(ids, results, strict=True):
            session.get(Verification, vid).result = stored
    retention = Retention(db, payload_max_age_seconds=DAY, batch_size=2, max_batches=2)
    assert retention.remove_payloads() == (4, True)  # two batches of two, more left
    assert Retention(db, payload_max_age_seconds=DAY, batch_size=2).remove_payloads() == (1, False)
    with db.session() as session:
        stored = [session.get(Verification, vid).result for vid in ids]
    assert stored == [
        {"summary": {}},
        {"summary": {"x": 1}},
        {"summary": {"y": 2}},
        {"summary": {"done": True}},
        None,
        {},
        {"summary": {"z": 3}, "other": "kept"},
    ]


def test_a_reopened_verification_keeps_its_answer(db):
    (vid,) = drive(db, ["reopened"])
    # Terminal long ago, then re-opened by an operator: finished_at is cleared.
    set_rows(db, Verification, [vid], finished_at=None, status="in_review")
    assert Retention(db, payload_max_age_seconds=30 * DAY).remove_payloads() == (0, False)
    assert "response" in snapshot(db, vid)[2]


def outbox_rows(db):
    with db.session() as session:
        return {
            row.event_id: row
            for row in session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))
        }


def test_old_published_outbox_rows_are_deleted_and_nothing_else(db):
    drive(db, [f"v{n}" for n in range(5)])  # ten events
    rows = list(outbox_rows(db).values())
    now = utcnow()
    old, recent, unpublished_old = rows[:6], rows[6:8], rows[8:]
    set_rows(db, OutboxEvent, [r.id for r in old], published_at=now - timedelta(days=8))
    set_rows(db, OutboxEvent, [r.id for r in recent], published_at=now - timedelta(days=6))
    set_rows(
        db,
        OutboxEvent,
        [r.id for r in unpublished_old],
        published_at=None,
        created_at=now - timedelta(days=100),
    )

    retention = Retention(db, outbox_max_age_seconds=7 * DAY, payload_max_age_seconds=0)
    assert retention.purge_outbox() == (6, False)
    left = outbox_rows(db)
    assert set(left) == {r.event_id for r in recent + unpublished_old}
    assert retention.run().outbox_deleted == 0
    # The transitions (history) stay whatever happens to the outbox.
    with db.session() as session:
        assert len(session.scalars(select(Transition)).all()) == 10


def test_outbox_deletion_is_batched(db):
    drive(db, [f"v{n}" for n in range(5)])
    set_rows(
        db,
        OutboxEvent,
        [r.id for r in outbox_rows(db).values()],
        published_at=utcnow() - timedelta(days=30),
    )
    retention = Retention(
        db, outbox_max_age_seconds=DAY, batch_size=3, max_batches=2, pause_seconds=0.01
    )
    assert retention.purge_outbox() == (6, True)  # two batches, more left for the next run
    assert len(outbox_rows(db)) == 4
    report = Retention(db, outbox_max_age_seconds=DAY, batch_size=3).run()
    assert (report.outbox_deleted, report.more_left) == (4, False)
    assert outbox_rows(db) == {}


def test_retention_settings_are_checked():
    with pytest.raises(ValueError, match="negative"):
        Retention(None, outbox_max_age_seconds=-1)
    with pytest.raises(ValueError, match="at least 1"):
        Retention(None, batch_size=0)


def test_a_run_stops_when_its_time_is_spent(db):
    drive(db, [f"v{n}" for n in range(3)])
    set_rows(
        db,
        OutboxEvent,
        [r.id for r in outbox_rows(db).values()],
        published_at=utcnow() - timedelta(days=30),
    )
    ticks = iter(range(100))  # each look at the clock: one second later
    retention = Retention(
        db,
        outbox_max_age_seconds=DAY,
        payload_max_age_seconds=DAY,
        batch_size=2,
        time_budget_seconds=2.5,
        monotonic=lambda: float(next(ticks)),
    )
    report = retention.run()  # deadline 2.5: batches at t=1 and t=2, none at t=3
    assert (report.outbox_deleted, report.payloads_removed, report.more_left) == (4, 0, True)
    assert len(outbox_rows(db)) == 2
