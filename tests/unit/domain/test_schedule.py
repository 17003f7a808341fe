import random

import pytest

from worker.domain.adaptive import (
    AdaptiveSettings,
    DurationHistory,
    Survival,
    adaptive_plan,
    expected_polls,
    learn_schedule,
)
from worker.domain.schedule import (
    DEFAULT_PLAN,
    MIN_DELAY_SECONDS,
    ScheduleConfigError,
    SchedulePlan,
    StatusSchedule,
    next_poll_delay,
    parse_jitter,
    parse_schedule,
    plan_from_env,
    polled_statuses,
    render_markdown_table,
)
from worker.domain.statuses import TERMINAL_STATUSES, VerificationStatus

PROVIDERS = ("notus", "bank131", "gu1", "predicate")
PENDING = VerificationStatus.PENDING
IN_REVIEW = VerificationStatus.IN_REVIEW


def plan_of(schedule: StatusSchedule, jitter: float = 0.0) -> SchedulePlan:
    return SchedulePlan({status: schedule for status in polled_statuses()}, jitter=jitter)


STEPS = StatusSchedule.of((0, 10), (120, 30), (1200, 120))


# -- phases -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "interval"),
    [(0, 10), (60, 10), (119.9, 10), (120, 30), (1199, 30), (1200, 120), (10**7, 120)],
)
def test_interval_grows_in_steps_with_time_in_status(seconds, interval):
    assert STEPS.interval_at(seconds) == interval


def test_without_jitter_the_delay_is_the_phase_interval():
    plan = plan_of(STEPS)
    rng = random.Random(1)
    assert next_poll_delay(plan, "gu1", PENDING, 0.0, rng) == 10
    assert next_poll_delay(plan, "gu1", PENDING, 500.0, rng) == 30
    assert next_poll_delay(plan, "gu1", PENDING, 5000.0, rng) == 120


def test_the_last_interval_is_the_cap():
    times = STEPS.offsets(100_000)
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert max(gaps) == 120
    assert times[:3] == [10, 20, 30]


def test_a_denser_later_phase_is_not_overshot():
    gap_then_dense = StatusSchedule.of((0, 1800), (600, 50), (900, 1800))
    assert gap_then_dense.nominal_delay(0) == 600  # lands on the dense stretch
    assert gap_then_dense.nominal_delay(580) == 50  # never denser than the dense phase
    assert gap_then_dense.nominal_delay(650) == 50
    assert gap_then_dense.nominal_delay(900) == 1800


@pytest.mark.parametrize("seconds", [0.0, 30.0, 600.0, 5000.0])
def test_jitter_stays_within_its_bounds_and_spreads(seconds):
    plan = plan_of(STEPS, jitter=0.1)
    rng = random.Random(7)
    nominal = STEPS.nominal_delay(seconds)
    delays = [next_poll_delay(plan, "gu1", PENDING, seconds, rng) for _ in range(2000)]
    assert all(0.9 * nominal <= delay <= 1.1 * nominal for delay in delays)
    assert min(delays) < 0.92 * nominal and max(delays) > 1.08 * nominal
    assert sum(delays) / len(delays) == pytest.approx(nominal, rel=0.01)


def test_no_delay_is_below_the_floor():
    plan = plan_of(StatusSchedule.of((0, 0.2)), jitter=0.5)
    rng = random.Random(3)
    assert all(
        next_poll_delay(plan, "gu1", PENDING, 0, rng) == MIN_DELAY_SECONDS for _ in range(50)
    )


def test_provider_overrides_one_status_only():
    fast = StatusSchedule.of((0, 5))
    plan = plan_of(STEPS).with_overrides("GU1", {IN_REVIEW: fast})
    assert plan.schedule_for("gu1", IN_REVIEW) is fast
    assert plan.schedule_for("gu1", PENDING) is STEPS
    assert plan.schedule_for("notus", IN_REVIEW) is STEPS
    assert next_poll_delay(plan, "gu1", IN_REVIEW, 10_000, random.Random(0)) == 5


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES))
def test_terminal_statuses_have_no_schedule(status):
    assert DEFAULT_PLAN.schedule_for("gu1", status) is None
    with pytest.raises(ValueError, match="terminal"):
        next_poll_delay(DEFAULT_PLAN, "gu1", status, 0.0, random.Random(0))


def test_a_plan_must_cover_every_polled_status_and_no_terminal_one():
    with pytest.raises(ValueError, match="no schedule for the non-terminal status in_progress"):
        SchedulePlan({PENDING: STEPS})
    statuses = dict(DEFAULT_PLAN.statuses)
    with pytest.raises(ValueError, match="terminal"):
        SchedulePlan({**statuses, VerificationStatus.APPROVED: STEPS})
    with pytest.raises(ValueError, match="terminal"):
        SchedulePlan(statuses, {"gu1": {VerificationStatus.REJECTED: STEPS}})
    with pytest.raises(ValueError, match="jitter"):
        SchedulePlan(statuses, jitter=0.9)


@pytest.mark.parametrize(
    "phases",
    [(), ((5, 10),), ((0, 10), (0, 20)), ((0, 10), (100, 0)), ((0, float("inf")),)],
)
def test_malformed_schedules_are_refused(phases):
    with pytest.raises(ValueError):
        StatusSchedule.of(*phases)


# -- defaults ---------------------------------------------------------------------------


def test_every_polled_status_has_a_default():
    for status in polled_statuses():
        assert DEFAULT_PLAN.schedule_for("any", status) is not None


def test_users_are_polled_about_every_minute_for_their_first_twenty_minutes():
    user = DEFAULT_PLAN.schedule_for("gu1", PENDING)
    assert user is not None
    longest = max(user.interval_at(t) for t in range(0, 1201, 10)) * (1 + DEFAULT_PLAN.jitter)
    assert longest <= 66
    for status in (VerificationStatus.IN_PROGRESS, VerificationStatus.RETRY):
        assert DEFAULT_PLAN.schedule_for("gu1", status) == user


def test_reviews_are_polled_at_a_steady_pace_with_a_cap():
    review = DEFAULT_PLAN.schedule_for("gu1", IN_REVIEW)
    assert review is not None
    intervals = [review.interval_at(t) for t in range(0, 40 * 86400, 600)]
    assert intervals == sorted(intervals)
    assert intervals[0] >= 120 and intervals[-1] <= 1800


# -- configuration ----------------------------------------------------------------------


def test_parse_schedule():
    schedule = parse_schedule(" 0:10, 120:30 ,1200:120,3600:600 ", variable="X")
    assert schedule == StatusSchedule.of((0, 10), (120, 30), (1200, 120), (3600, 600))
    assert parse_schedule("0:7.5", variable="X") == StatusSchedule.of((0, 7.5))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "pairs"),
        ("0:10,", "pairs"),
        ("0-10", "not a <seconds-in-status>:<interval> pair"),
        ("0:ten", "'ten' is not a number"),
        ("0:10,abc:20", "'abc' is not a number"),
        ("0:-5", "must be a finite number"),
        ("0:inf", "must be a finite number"),
        ("0:nan", "must be a finite number"),
        ("0:0", "greater than 0"),
        ("60:10", "must start at 0"),
        ("0:10,300:20,300:30", "strictly increase"),
        ("0:10,300:20,200:30", "strictly increase"),
    ],
)
def test_bad_schedules_name_the_variable(value, message):
    with pytest.raises(ScheduleConfigError, match="KYC_POLL_SCHEDULE_IN_REVIEW") as error:
        parse_schedule(value, variable="KYC_POLL_SCHEDULE_IN_REVIEW")
    assert message in str(error.value)


def test_plan_from_env_applies_statuses_providers_and_jitter():
    plan = plan_from_env(
        {
            "KYC_POLL_SCHEDULE_IN_REVIEW": "0:100,3600:400",
            "KYC_POLL_SCHEDULE_GU1_IN_REVIEW": "0:30",
            "KYC_POLL_SCHEDULE_BANK131_PENDING": "0:20,600:60",
            "KYC_POLL_SCHEDULE_JITTER": "0.05",
            "KYC_SCHEDULE_INTERVAL": "2",  # the beat period: not ours
            "KYC_POLL_BASE_SECONDS": "5",
            "PATH": "/usr/bin",
        },
        PROVIDERS,
    )
    assert plan.jitter == 0.05
    assert plan.schedule_for("notus", IN_REVIEW) == StatusSchedule.of((0, 100), (3600, 400))
    assert plan.schedule_for("gu1", IN_REVIEW) == StatusSchedule.of((0, 30))
    assert plan.schedule_for("bank131", PENDING) == StatusSchedule.of((0, 20), (600, 60))
    assert plan.schedule_for("gu1", PENDING) == DEFAULT_PLAN.schedule_for("gu1", PENDING)


def test_plan_from_env_without_settings_is_the_default():
    assert plan_from_env({}, PROVIDERS) == DEFAULT_PLAN


@pytest.mark.parametrize(
    ("variable", "message"),
    [
        ("KYC_POLL_SCHEDULE_APPROVED", "terminal"),
        ("KYC_POLL_SCHEDULE_GU1_REJECTED", "terminal"),
        ("KYC_POLL_SCHEDULE_INREVIEW", "unknown setting"),
        ("KYC_POLL_SCHEDULE_ACME_PENDING", "unknown setting"),
        ("KYC_POLL_SCHEDULE_GU1", "unknown setting"),
    ],
)
def test_plan_from_env_refuses_unknown_variables_by_name(variable, message):
    with pytest.raises(ScheduleConfigError, match=variable) as error:
        plan_from_env({variable: "0:60"}, PROVIDERS)
    assert message in str(error.value)


def test_a_bad_value_names_its_variable():
    with pytest.raises(ScheduleConfigError, match="KYC_POLL_SCHEDULE_NOTUS_RETRY"):
        plan_from_env({"KYC_POLL_SCHEDULE_NOTUS_RETRY": "0:0"}, PROVIDERS)


@pytest.mark.parametrize("value", ["x", "-0.1", "0.6", "nan"])
def test_bad_jitter_is_refused(value):
    with pytest.raises(ScheduleConfigError, match="KYC_POLL_SCHEDULE_JITTER"):
        parse_jitter(value)


def test_markdown_table_lists_every_status_and_override():
    plan = plan_from_env({"KYC_POLL_SCHEDULE_GU1_IN_REVIEW": "0:30,600:90"}, PROVIDERS)
    table = render_markdown_table(plan)
    for status in polled_statuses():
        assert f"`KYC_POLL_SCHEDULE_{status.value.upper()}`" in table
    assert "`KYC_POLL_SCHEDULE_GU1_IN_REVIEW`" in table
    assert "every 30 s to 10 min, then every 1.5 min" in table
    assert "approved" not in table
    assert "KYC_POLL_SCHEDULE_JITTER" in table


def test_settings_round_trip_through_the_parser():
    for schedule in DEFAULT_PLAN.statuses.values():
        assert parse_schedule(schedule.to_setting(), variable="X") == schedule


# -- adaptive ---------------------------------------------------------------------------


def uniform_history(low: float, high: float, count: int, seed: int = 0) -> DurationHistory:
    rng = random.Random(seed)
    return DurationHistory([rng.uniform(low, high) for _ in range(count)])


REVIEW = StatusSchedule.of((0, 330), (3600, 480), (86400, 1800))


def test_too_little_history_keeps_the_static_schedule():
    history = uniform_history(3600, 86400, 199)
    assert learn_schedule(history, REVIEW, AdaptiveSettings(min_samples=200)) is REVIEW
    plan = adaptive_plan(DEFAULT_PLAN, {("gu1", IN_REVIEW): history})
    assert plan == DEFAULT_PLAN


@pytest.mark.parametrize(("low", "high"), [(3600, 86400), (300, 3600), (120, 1200)])
def test_learned_schedule_keeps_the_budget_and_polls_where_changes_happen(low, high):
    history = uniform_history(low, high, 2000)
    survival = Survival(history)
    learned = learn_schedule(history, REVIEW)
    assert learned != REVIEW
    horizon = survival.last_time
    assert expected_polls(learned, survival, horizon) <= expected_polls(REVIEW, survival, horizon)
    # Before any change can happen, only sparse polls (at most the settings' max interval).
    early = [t for t in learned.offsets(horizon) if t < low]
    assert len(early) <= low // AdaptiveSettings().max_interval + 1
    # Where changes happen, it polls at one steady spacing.
    dense = learned.interval_at((low + high) / 2)
    assert dense < AdaptiveSettings().max_interval
    assert learned.interval_at(low + 0.8 * (high - low)) == dense


def test_learned_schedule_beats_the_static_p95_at_equal_budget():
    history = uniform_history(3600, 86400, 3000)
    learned = learn_schedule(history, REVIEW)
    changes = uniform_history(3600, 86400, 3000, seed=1).completed

    def delays(schedule: StatusSchedule) -> list[float]:
        times = schedule.offsets(90_000)
        return sorted(min(t for t in times if t >= change) - change for change in changes)

    assert delays(learned)[int(0.95 * len(changes))] < delays(REVIEW)[int(0.95 * len(changes))]


def test_a_budget_too_small_for_any_learned_schedule_keeps_the_static_one():
    sparse = StatusSchedule.of((0, 5000))
    history = uniform_history(100, 20_000, 500)
    settings = AdaptiveSettings(max_interval=600)
    assert learn_schedule(history, sparse, settings) is sparse


def test_adaptive_plan_overrides_only_providers_with_enough_history():
    histories = {
        ("gu1", IN_REVIEW): uniform_history(300, 3600, 500),
        ("notus", IN_REVIEW): uniform_history(300, 3600, 50),
        ("gu1", VerificationStatus.APPROVED): uniform_history(1, 2, 500),
    }
    plan = adaptive_plan(DEFAULT_PLAN, histories)
    assert plan.schedule_for("gu1", IN_REVIEW) != DEFAULT_PLAN.schedule_for("gu1", IN_REVIEW)
    assert plan.schedule_for("notus", IN_REVIEW) == DEFAULT_PLAN.schedule_for("notus", IN_REVIEW)
    assert plan.schedule_for("gu1", PENDING) == DEFAULT_PLAN.schedule_for("gu1", PENDING)
    assert plan.schedule_for("gu1", VerificationStatus.APPROVED) is None


def test_survival_counts_open_verifications_as_at_least_this_long():
    complete = Survival(DurationHistory([10, 20, 30, 40]))
    assert [complete.at(t) for t in (5, 10, 25, 40)] == [1.0, 0.75, 0.5, 0.0]
    # Two still open at 35 s: they did not end by 30, so fewer ended early than it seems.
    censored = Survival(DurationHistory([10, 20, 30, 40], still_open=[35, 35]))
    assert censored.at(10) == pytest.approx(5 / 6)
    assert censored.at(20) == pytest.approx(5 / 6 * 4 / 5)
    assert censored.at(30) == pytest.approx(5 / 6 * 4 / 5 * 3 / 4)
    assert censored.at(40) == 0.0
    assert censored.alive_time(0, 10) == pytest.approx(10)
    assert complete.quantile(0.5) == 20
