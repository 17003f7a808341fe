"""Adaptive mode on both databases: durations from the transition history, a learned plan."""

from __future__ import annotations

from datetime import timedelta

from models import Transition, Verification
from tests.doubles import FakeClock
from worker.adapters.sql_store import SqlStore
from worker.domain.adaptive import AdaptiveSettings
from worker.domain.schedule import DEFAULT_PLAN
from worker.domain.statuses import VerificationStatus as S
from worker.services.learning import ScheduleLearner
from worker.services.tracking import track_verification


def record_review(db, vid, entered, left, versions=(2, 3)):
    """`vid` went pending -> in_review at `entered` and was approved at `left`."""
    with db.session() as session, session.begin():
        session.add_all(
            [
                Transition(
                    verification_id=vid,
                    version=version,
                    from_status=from_status,
                    to_status=to_status,
                    reason="provider",
                    occurred_at=at,
                )
                for version, from_status, to_status, at in (
                    (versions[0], S.PENDING, S.IN_REVIEW, entered),
                    (versions[1], S.IN_REVIEW, S.APPROVED, left),
                )
            ]
        )
        row = session.get(Verification, vid)
        row.status, row.next_poll_at = S.APPROVED, None


def review_history(db, clock, count, minutes):
    """`count` gu1 verifications that each sat `minutes` in review before approval."""
    for n in range(count):
        vid = track_verification(db, "gu1", f"v-{minutes}-{n}", now=clock.now).verification_id
        entered = clock.now + timedelta(minutes=1)
        record_review(db, vid, entered, entered + timedelta(minutes=minutes))


def test_durations_come_from_the_history_per_provider_and_status(db):
    clock = FakeClock()
    review_history(db, clock, 5, minutes=30)
    track_verification(db, "notus", "still-pending", now=clock.now)
    histories = SqlStore(db).status_durations(
        now=clock.now + timedelta(hours=2), since=clock.now - timedelta(days=1)
    )
    review = histories[("gu1", S.IN_REVIEW)]
    assert sorted(review.completed) == [1800.0] * 5
    assert sorted(histories[("gu1", S.PENDING)].completed) == [60.0] * 5
    assert histories[("notus", S.PENDING)].still_open == [7200.0]


def test_the_learner_builds_a_plan_from_enough_history_and_keeps_it_for_a_while(db):
    clock = FakeClock()
    review_history(db, clock, 30, minutes=45)
    learner = ScheduleLearner(
        SqlStore(db),
        DEFAULT_PLAN,
        refresh_seconds=600,
        history_seconds=86400,
        clock=lambda: clock.now + timedelta(hours=3),
        settings=AdaptiveSettings(min_samples=20),
    )
    plan = learner.plan()
    learned = plan.schedule_for("gu1", S.IN_REVIEW)
    assert learned is not DEFAULT_PLAN.schedule_for("gu1", S.IN_REVIEW)
    # Other providers, with no history, keep the static schedule.
    assert plan.schedule_for("notus", S.IN_REVIEW) is DEFAULT_PLAN.schedule_for(
        "notus", S.IN_REVIEW
    )
    assert learner.plan() is plan  # cached until the refresh is due


def test_too_little_history_keeps_the_static_plan(db):
    clock = FakeClock()
    review_history(db, clock, 3, minutes=45)
    learner = ScheduleLearner(
        SqlStore(db),
        DEFAULT_PLAN,
        refresh_seconds=0,
        history_seconds=86400,
        clock=lambda: clock.now + timedelta(hours=3),
    )
    assert learner.plan().schedule_for("gu1", S.IN_REVIEW) is DEFAULT_PLAN.schedule_for(
        "gu1", S.IN_REVIEW
    )


def test_a_status_entered_before_the_window_counts_from_when_it_was_entered(db):
    # Unchanged polls bump the version between transitions (versions are not contiguous),
    # and the transition that entered the status may be older than the history window.
    clock = FakeClock()
    vid = track_verification(db, "gu1", "long-review", now=clock.now).verification_id
    entered = clock.now + timedelta(minutes=2)
    left = entered + timedelta(days=3)
    record_review(db, vid, entered, left, versions=(4, 9))
    histories = SqlStore(db).status_durations(now=left, since=left - timedelta(days=1))
    assert histories[("gu1", S.IN_REVIEW)].completed == [3 * 86400.0]
    assert ("gu1", S.PENDING) not in histories  # its transition is outside the window
