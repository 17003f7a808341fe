"""Sync, re-verification and unknown words end to end: real adapters over HTTP against the
fakes, the real SQL store on SQLite and PostgreSQL, the engine in between.

Fixtures are the fake gu1's answers shaped as docs.gu1.ai/en/use-cases/kyc/check-status
shows them (status, decision, needsReverification, expiresAt; the sync endpoint).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from models import OutboxEvent, Verification, VerificationAction
from tests.doubles import FakeClock
from worker.adapters.event_loop import EventLoopThread
from worker.adapters.registry import build_adapters
from worker.adapters.sql_store import SqlStore, insert_verification_if_absent
from worker.adapters.transport import AiohttpTransport, TransportLimits
from worker.config import Settings
from worker.domain.cloudevents import to_cloudevent
from worker.domain.decisions import PollPolicy
from worker.domain.errors import ErrorCode
from worker.domain.events import REVERIFICATION_DUE, STATUS_CHANGED
from worker.domain.statuses import VerificationStatus as S
from worker.domain.sync import SyncPolicy
from worker.services.polling import PollEngine
from worker.services.timeline import history_with_actions
from worker.services.watchlists import reverifications, unknown_statuses

HOUR = 3600.0
POLICY = PollPolicy(
    max_age_seconds=60 * 86400.0,
    reverification_check_seconds=HOUR,
    sync=SyncPolicy(after_seconds={S.IN_PROGRESS: HOUR}, window_seconds=24 * HOUR),
)


@pytest.fixture(scope="module")
def io_loop() -> Iterator[EventLoopThread]:
    loop = EventLoopThread("test-sync")
    yield loop
    loop.stop()


@pytest.fixture
def clock() -> FakeClock:
    from models import utcnow

    return FakeClock(utcnow())


class Fleet:
    """One engine over the real store and adapters; `track` and `poll` read as steps."""

    def __init__(self, db, fake_providers, io_loop, clock, env=None, policy=POLICY) -> None:
        self.db = db
        self.clock = clock
        self.transport = AiohttpTransport(TransportLimits(connect_timeout=2, read_timeout=5))
        self.io_loop = io_loop
        settings = Settings.from_env({**fake_providers.provider_env(), **(env or {})})
        self.engine = PollEngine(
            SqlStore(db),
            build_adapters(settings.providers),
            self.transport,
            policy,
            runner=lambda coroutine: io_loop.run(coroutine, timeout=30),
            clock=clock,
            rng=random.Random(4),
        )

    def track(self, provider: str, external_id: str) -> int:
        with self.db.session() as session, session.begin():
            vid, _ = insert_verification_if_absent(
                session,
                provider=provider,
                external_id=external_id,
                verification_type=None,
                now=self.clock(),
            )
        return vid

    def poll(self, vid: int):
        return self.engine.poll_batch([vid])

    def row(self, vid: int) -> Verification:
        with self.db.session() as session:
            row = session.get(Verification, vid)
            assert row is not None
            return row

    def events(self, vid: int) -> list[dict]:
        with self.db.session() as session:
            return [
                row.payload
                for row in session.scalars(
                    select(OutboxEvent)
                    .where(OutboxEvent.verification_id == vid)
                    .order_by(OutboxEvent.id)
                )
            ]

    def close(self) -> None:
        self.io_loop.run(self.transport.close())


@pytest.fixture
def fleet(db, fake_providers, io_loop, clock) -> Iterator[Fleet]:
    fleet = Fleet(db, fake_providers, io_loop, clock)
    yield fleet
    fleet.close()


def gu1_id() -> str:
    return f"val-{uuid.uuid4().hex[:12]}"


def test_a_stuck_gu1_validation_is_synced_once_then_polled_and_history_shows_it(
    fleet, fake_providers, clock
):
    session_id = gu1_id()
    fake_providers.add_session(
        "gu1", session_id, ["pending", {"status": "in_progress", "after_sync": "approved"}]
    )
    vid = fleet.track("gu1", session_id)
    fleet.poll(vid)  # pending
    fleet.poll(vid)  # in_progress, fresh: no sync
    clock.advance(30 * 60)
    fleet.poll(vid)  # half an hour in: still no sync
    assert fake_providers.sync_count("gu1", session_id) == 0
    assert fleet.row(vid).status is S.IN_PROGRESS
    clock.advance(HOUR)
    report = fleet.poll(vid)  # stuck: synced, then polled in the same batch
    assert fake_providers.sync_count("gu1", session_id) == 1
    assert report.transitions == 1
    row = fleet.row(vid)
    assert (row.status, row.last_sync_at) == (S.APPROVED, clock())
    history = history_with_actions(fleet.db, vid)
    assert [(e.entry, e.to_json().get("to_status") or e.to_json()["kind"]) for e in history] == [
        ("transition", "in_progress"),
        ("action", "sync"),
        ("transition", "approved"),
    ]
    sync = history[1].to_json()
    assert (sync["outcome"], sync["http_status"], sync["detail"]) == (
        "accepted",
        200,
        "in_progress",
    )
    assert [e["event_type"] for e in fleet.events(vid)] == [STATUS_CHANGED, STATUS_CHANGED]
    assert fleet.poll(vid).skipped == 1  # terminal, no expiry: not polled, not synced
    assert fake_providers.sync_count("gu1", session_id) == 1


def test_a_validation_still_stuck_is_synced_again_only_after_the_window(
    fleet, fake_providers, clock
):
    session_id = gu1_id()
    fake_providers.add_session("gu1", session_id, ["in_progress"])
    vid = fleet.track("gu1", session_id)
    fleet.poll(vid)
    for _ in range(12):  # every 2 h for a day: one sync
        clock.advance(2 * HOUR)
        fleet.poll(vid)
    assert fake_providers.sync_count("gu1", session_id) == 1
    clock.advance(2 * HOUR)  # 24 h after the first
    fleet.poll(vid)
    assert fake_providers.sync_count("gu1", session_id) == 2
    with fleet.db.session() as session:
        mine = session.scalars(
            select(VerificationAction).where(VerificationAction.verification_id == vid)
        ).all()
    assert [(a.kind, a.outcome) for a in mine] == [("sync", "accepted")] * 2


def test_an_approval_reaching_its_expiry_emits_one_reverification_event(
    fleet, fake_providers, clock
):
    session_id = gu1_id()
    later = clock() + timedelta(hours=3)
    expiry = later.replace(microsecond=later.microsecond // 1000 * 1000)  # gu1 sends ms
    stamp = expiry.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    fake_providers.add_session(
        "gu1", session_id, ["pending", {"status": "approved", "expires_at": stamp}]
    )
    vid = fleet.track("gu1", session_id)
    fleet.poll(vid)
    fleet.poll(vid)
    row = fleet.row(vid)
    assert (row.status, row.expires_at) == (S.APPROVED, expiry)
    assert row.next_poll_at is not None and row.next_poll_at <= clock() + timedelta(hours=1.1)
    assert row.result["summary"]["expires_at"] == expiry.isoformat()
    listed = reverifications(fleet.db, now=clock(), within=timedelta(hours=4))
    assert [e.verification_id for e in listed.expiring] == [vid] and listed.due == []
    polls = 0
    while fleet.row(vid).next_poll_at is not None and polls < 10:
        clock.now = max(clock(), fleet.row(vid).next_poll_at)
        fleet.poll(vid)
        polls += 1
    assert 3 <= polls <= 4  # hourly checks, the last one at the expiry
    row = fleet.row(vid)
    assert (row.status, row.reverification_event_at, row.next_poll_at) == (
        S.APPROVED,
        expiry,
        None,
    )
    events = fleet.events(vid)
    assert [e["event_type"] for e in events] == [STATUS_CHANGED, REVERIFICATION_DUE]
    due = events[-1]
    assert due["reverification"] == {"trigger": "expired", "expires_at": expiry.isoformat()}
    assert (due["from_status"], due["to_status"], due["terminal"]) == ("approved", "approved", True)
    assert due["verification_version"] == row.version
    assert due["summary"]["expires_at"] == expiry.isoformat()
    assert to_cloudevent(due)["type"] == "com.kyc-poller.verification.reverification_due.v1"
    assert fleet.poll(vid).skipped == 1  # no longer watched: exactly one event
    assert len(fleet.events(vid)) == 2
    listed = reverifications(fleet.db, now=clock())
    assert [e.verification_id for e in listed.due] == [vid] and listed.due[0].due


def test_a_flag_turning_true_is_due_at_the_check_that_sees_it(fleet, fake_providers, clock):
    session_id = gu1_id()
    fake_providers.add_session(
        "gu1",
        session_id,
        [
            "pending",
            {"status": "approved", "expires_in": 30 * 86400},
            {"status": "approved", "expires_in": 30 * 86400},
            {"status": "approved", "expires_in": 30 * 86400, "needs_reverification": True},
        ],
    )
    vid = fleet.track("gu1", session_id)
    fleet.poll(vid)
    fleet.poll(vid)
    for _ in range(2):
        clock.now = fleet.row(vid).next_poll_at
        fleet.poll(vid)
    events = fleet.events(vid)
    assert events[-1]["event_type"] == REVERIFICATION_DUE
    assert events[-1]["reverification"]["trigger"] == "needs_reverification"
    assert events[-1]["summary"]["needs_reverification"] is True
    assert sum(e["event_type"] == REVERIFICATION_DUE for e in events) == 1
    assert fleet.row(vid).next_poll_at is None


def test_an_approval_without_an_expiry_stays_terminal_and_unpolled(fleet, fake_providers, clock):
    session_id = gu1_id()
    fake_providers.add_session("gu1", session_id, ["approved"])
    vid = fleet.track("gu1", session_id)
    fleet.poll(vid)
    row = fleet.row(vid)
    assert (row.status, row.next_poll_at, row.expires_at) == (S.APPROVED, None, None)


def test_unknown_words_are_listed_and_an_operators_mapping_resolves_them(
    db, fake_providers, io_loop, clock
):
    ids = [gu1_id() for _ in range(3)]
    fleet = Fleet(db, fake_providers, io_loop, clock)
    try:
        vids = []
        for session_id in ids:
            fake_providers.add_session("gu1", session_id, ["on_hold"])
            vids.append(fleet.track("gu1", session_id))
            fleet.poll(vids[-1])
        row = fleet.row(vids[0])
        assert (row.provider_status, row.last_error_code) == ("on_hold", ErrorCode.UNKNOWN_STATUS)
        assert row.next_poll_at is not None
        wait = (row.next_poll_at - clock()).total_seconds()
        assert 0.9 * 600 <= wait <= 1.1 * 600  # the slow pace, not the error backoff
        (word,) = unknown_statuses(db, provider="gu1", examples=2)
        assert (word.provider, word.provider_status, word.verifications) == ("gu1", "on_hold", 3)
        assert [e.verification_id for e in word.examples] == vids[:2]
        assert word.to_json()["examples"][0]["external_id"] == ids[0]
    finally:
        fleet.close()
    mapped = Fleet(
        db, fake_providers, io_loop, clock, env={"KYC_GU1_STATUS_MAP_EXTRA": "on_hold=in_review"}
    )
    try:
        clock.advance(700)
        for vid in vids:
            mapped.poll(vid)
        assert {mapped.row(vid).status for vid in vids} == {S.IN_REVIEW}
        assert unknown_statuses(db, provider="gu1") == []
    finally:
        mapped.close()


def test_the_sync_cap_of_zero_turns_syncing_off(db, fake_providers, io_loop, clock):
    policy = replace(POLICY, sync=replace(POLICY.sync, max_per_minute=0))
    fleet = Fleet(db, fake_providers, io_loop, clock, policy=policy)
    try:
        session_id = gu1_id()
        fake_providers.add_session("gu1", session_id, ["in_progress"])
        vid = fleet.track("gu1", session_id)
        fleet.poll(vid)
        clock.advance(5 * HOUR)
        fleet.poll(vid)
        assert fake_providers.sync_count("gu1", session_id) == 0
    finally:
        fleet.close()
