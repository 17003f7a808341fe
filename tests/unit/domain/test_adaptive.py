"""Adaptive schedules: where changes land, learned from the seeing times the history keeps, and
placed within the static plan's budget, the first-change goal and the maximum gaps."""

import math
import random

import pytest

from worker.domain.adaptive import (
    AdaptiveSettings,
    DurationHistory,
    LearnedChanges,
    Survival,
    adaptive_plan,
    jittered_requests,
    learn_provider,
)
from worker.domain.placement import FunctionChanges, late_share
from worker.domain.schedule import DEFAULT_PLAN, SchedulePlan, StatusSchedule
from worker.domain.statuses import VerificationStatus

PENDING, IN_REVIEW = VerificationStatus.PENDING, VerificationStatus.IN_REVIEW
EVERY_MINUTE = StatusSchedule.of((0, 60))


def uniform(low: float, high: float) -> FunctionChanges:
    return FunctionChanges(lambda t: min(max((t - low) / (high - low), 0.0), 1.0), high)


def seen(changes: list[float], schedule: StatusSchedule, cap: float = math.inf) -> list[float]:
    """The seeing times kyc-poller records for these change times under `schedule`."""
    polls = schedule.offsets(max(changes) + 1, cap)
    return [next(at for at in polls if at >= change) for change in changes]


def draws(low: float, high: float, count: int, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(low, high) for _ in range(count)]


def test_learned_changes_recover_where_changes_land_not_where_they_were_seen():
    changes = draws(300, 3600, 5000)
    learned = LearnedChanges(DurationHistory(seen(changes, EVERY_MINUTE)), EVERY_MINUTE, 1800)
    truth = uniform(300, 3600)
    for t in (400, 1000, 2000, 3000):
        assert learned.cdf(t) == pytest.approx(truth.cdf(t), abs=0.02)
    # The seeing times alone would put every change up to a minute late.
    assert learned.cdf(330) < 0.02


def test_the_first_gap_is_spread_from_the_floor_to_the_first_poll():
    """Polled first at 180 s, users (from 120 s) are all seen there: their changes are laid
    from the floor, not from 0 (nothing says where in the gap they came)."""
    first = StatusSchedule.of((0, 180), (180, 60))
    changes = draws(120, 1200, 5000)
    history = DurationHistory(seen(changes, first))
    floored = LearnedChanges(history, first, 1800, floor=90.0)
    assert floored.cdf(90) == 0.0
    assert floored.cdf(180) == pytest.approx(60 / 1080, abs=0.01)
    # Against the truth (changes from 120 s) the spread is early, never late, at the
    # points a next schedule's late share is read from.
    truth = uniform(120, 1200)
    for t in (130, 150, 170):
        assert floored.cdf(t) >= truth.cdf(t) - 0.005


def test_a_review_first_gap_lies_against_its_end_at_the_next_gaps_density():
    review = StatusSchedule.of((0, 600), (600, 120))
    changes = draws(300, 3600, 8000)
    learned = LearnedChanges(DurationHistory(seen(changes, review)), review, 1800)
    truth = uniform(300, 3600)
    assert learned.cdf(250) == pytest.approx(0.0, abs=0.01)
    assert learned.cdf(600) == pytest.approx(truth.cdf(600), abs=0.01)


def test_survival_counts_open_verifications_as_at_least_this_long():
    complete = Survival(DurationHistory([10, 20, 30, 40]))
    assert [complete.at(t) for t in (5, 10, 25, 40)] == [1.0, 0.75, 0.5, 0.0]
    censored = Survival(DurationHistory([10, 20, 30, 40], still_open=[35, 35]))
    assert censored.at(10) == pytest.approx(5 / 6)
    assert censored.at(20) == pytest.approx(5 / 6 * 4 / 5)
    assert censored.at(30) == pytest.approx(5 / 6 * 4 / 5 * 3 / 4)
    assert censored.at(40) == 0.0


def provider_history(plan: SchedulePlan, count: int = 6000, seed: int = 1):
    """gu1's pending and in_review durations as the static plan saw them (users 2-20 min,
    reviews 5-60 min): the review clock starts at the poll that saw the user finish."""
    users = draws(120, 1200, count, seed)
    reviews = draws(300, 3600, count, seed + 1)
    pending = plan.schedule_for("gu1", PENDING)
    review = plan.schedule_for("gu1", IN_REVIEW)
    assert pending is not None and review is not None
    user_seen = seen(users, pending)
    in_clock = [r - (s - u) for r, s, u in zip(reviews, user_seen, users, strict=True)]
    return {
        PENDING: DurationHistory(user_seen),
        IN_REVIEW: DurationHistory(seen(in_clock, review, plan.max_gap(IN_REVIEW))),
    }


def test_a_learned_plan_keeps_the_first_change_goal_the_budget_and_the_gaps():
    static = DEFAULT_PLAN.with_max_gaps({IN_REVIEW: 600.0})
    histories = provider_history(static)
    settings = AdaptiveSettings()
    learned = learn_provider("gu1", static, static, histories, settings)
    assert set(learned) == {PENDING, IN_REVIEW}
    users, reviews = uniform(120, 1200), uniform(270, 3600)
    user_polls = learned[PENDING].offsets(1300)
    # 95 % of user changes within 60 s (the learner aims a little under the 5 %).
    assert late_share(users, user_polls, 60.0) <= 0.05
    # It skips the start, where no user finishes, which the static schedule polls.
    assert learned[PENDING].first_wait > DEFAULT_PLAN.statuses[PENDING].first_wait

    # Requests: the two statuses together spend no more than the static schedules would.
    def spend(plan_for: dict[VerificationStatus, StatusSchedule]) -> float:
        return jittered_requests(
            LearnedChanges(histories[PENDING], static.statuses[PENDING], 1800, 90.0),
            plan_for[PENDING],
            1800.0,
            static.jitter,
        ) + jittered_requests(
            LearnedChanges(histories[IN_REVIEW], static.statuses[IN_REVIEW], 600.0),
            plan_for[IN_REVIEW],
            600.0,
            static.jitter,
        )

    # ... and spend that budget, not leave it unused (less the learner's 0.1 % safety).
    assert (
        spend(dict(static.statuses)) * 0.99
        <= spend(learned)
        <= spend(dict(static.statuses)) * 1.002
    )
    # No learned wait exceeds the review's maximum gap.
    times = learned[IN_REVIEW].offsets(4000, 600.0)
    assert max(b - a for a, b in zip([0.0, *times], times, strict=False)) <= 600.0
    assert all(p.interval <= 600.0 for p in learned[IN_REVIEW].phases)

    # And it sees decisions sooner than the static schedule at that spend: compare the
    # window each leaves 10 % of decisions later than.
    def window_for(schedule: StatusSchedule) -> float:
        polls = schedule.offsets(3700, 600.0)
        return next(w for w in range(60, 600) if late_share(reviews, polls, float(w)) <= 0.1)

    assert window_for(learned[IN_REVIEW]) < 0.85 * window_for(static.statuses[IN_REVIEW])


def test_known_changes_replace_the_estimate_of_a_status():
    """Told where users finish (from 120 s), the learner need not assume changes from its
    floor (90 s: the history cannot show below the first poll), so it polls users later
    and leaves more of the budget to the review; the first-change goal still holds."""
    static = DEFAULT_PLAN.with_max_gaps({IN_REVIEW: 600.0})
    histories = provider_history(static)
    settings = AdaptiveSettings()
    users = uniform(120, 1200)
    guessed = learn_provider("gu1", static, static, histories, settings)
    told = learn_provider("gu1", static, static, histories, settings, {PENDING: users})
    assert told[PENDING].first_wait > guessed[PENDING].first_wait + 5.0
    assert late_share(users, told[PENDING].offsets(1300), 60.0) <= 0.05
    reviews = uniform(270, 3600)
    spent = [
        jittered_requests(reviews, plan[IN_REVIEW], 600.0, static.jitter)
        for plan in (guessed, told)
    ]
    assert spent[1] > spent[0]
    # Through the plan too, keyed by provider.
    plan = adaptive_plan(
        static,
        {("gu1", s): h for s, h in histories.items()},
        settings,
        known={("gu1", PENDING): users},
    )
    assert plan.schedule_for("gu1", PENDING) == told[PENDING]


def test_too_little_history_keeps_the_static_schedule():
    histories = {("gu1", IN_REVIEW): DurationHistory(draws(300, 3600, 199))}
    assert adaptive_plan(DEFAULT_PLAN, histories, AdaptiveSettings(min_samples=200)) == DEFAULT_PLAN


def test_adaptive_plan_overrides_only_providers_with_enough_history():
    many = provider_history(DEFAULT_PLAN, count=1500)
    histories = {
        ("gu1", IN_REVIEW): many[IN_REVIEW],
        ("gu1", PENDING): many[PENDING],
        ("notus", IN_REVIEW): DurationHistory(draws(300, 3600, 50)),
        ("gu1", VerificationStatus.APPROVED): DurationHistory(draws(1, 2, 500)),
    }
    plan = adaptive_plan(DEFAULT_PLAN, histories)
    assert plan.schedule_for("gu1", IN_REVIEW) != DEFAULT_PLAN.schedule_for("gu1", IN_REVIEW)
    assert plan.schedule_for("notus", IN_REVIEW) == DEFAULT_PLAN.schedule_for("notus", IN_REVIEW)
    assert (
        plan.schedule_for("gu1", VerificationStatus.RETRY)
        == DEFAULT_PLAN.statuses[VerificationStatus.RETRY]
    )
    assert plan.schedule_for("gu1", VerificationStatus.APPROVED) is None
    assert plan.max_gaps == DEFAULT_PLAN.max_gaps


def test_a_learned_review_never_spends_more_than_the_static_one_would():
    """One poll at 30 min sees every review (all the history knows is that they ended by
    then): whatever is learned costs at most what that one poll costs."""
    sparse = StatusSchedule.of((0, 1800))
    static = DEFAULT_PLAN.with_overrides("gu1", {IN_REVIEW: sparse})
    histories = {IN_REVIEW: DurationHistory(seen(draws(30, 40, 500), sparse))}
    learned = learn_provider("gu1", static, static, histories, AdaptiveSettings())
    estimate = LearnedChanges(histories[IN_REVIEW], sparse, 1800.0)
    for schedule in learned.values():
        spent = jittered_requests(estimate, schedule, 1800.0, static.jitter)
        assert spent <= jittered_requests(estimate, sparse, 1800.0, static.jitter)


def test_the_allowance_keeps_a_margin_that_shrinks_with_the_history():
    settings = AdaptiveSettings()
    assert settings.within(0.1, 100) < settings.within(0.1, 10_000) < 0.1
    assert settings.within(0.1, 10_000) == pytest.approx(0.1 - 2 * math.sqrt(0.1 / 10_000))
    assert settings.within(0.1, 1) == 0.05  # never below half the allowance


@pytest.mark.parametrize(
    "bad",
    [
        {"min_samples": 0},
        {"coverage": 1.0},
        {"first_change_coverage": 0.4},
        {"max_review_miss": 0.01},
        {"min_interval": 0.5},
        {"budget_safety": 1.0},
        {"confidence": -1.0},
    ],
)
def test_settings_are_validated(bad):
    with pytest.raises(ValueError):
        AdaptiveSettings(**bad)
