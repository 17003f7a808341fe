import random
from itertools import pairwise

import pytest

from worker.domain.schedule import (
    DEFAULT_MAX_GAP_SECONDS,
    DEFAULT_PLAN,
    MIN_DELAY_SECONDS,
    ScheduleConfigError,
    SchedulePlan,
    StatusSchedule,
    first_wait_spread,
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


def test_jitter_spreads_the_first_wait_only():
    plan = plan_of(STEPS, jitter=0.1)
    rng = random.Random(7)
    first = [next_poll_delay(plan, "gu1", PENDING, 0.0, rng) for _ in range(2000)]
    assert all(9.0 <= delay <= 11.0 for delay in first)
    assert min(first) < 9.2 and max(first) > 10.8
    assert sum(first) / len(first) == pytest.approx(10.0, rel=0.01)  # costs nothing on average
    # The first wait right after tracking (the first poll a second or two in) too.
    assert all(8.0 <= next_poll_delay(plan, "gu1", PENDING, 1.0, rng) <= 10.0 for _ in range(50))
    # Later waits are the schedule's own: no gap longer than it says.
    for seconds in (30.0, 600.0, 5000.0):
        assert {next_poll_delay(plan, "gu1", PENDING, seconds, rng) for _ in range(50)} == {
            STEPS.nominal_delay(seconds)
        }


def test_a_first_wait_near_the_maximum_gap_is_jittered_less_and_stays_centred():
    assert first_wait_spread(600.0, 0.1, 1800.0) == 60.0
    assert first_wait_spread(1750.0, 0.1, 1800.0) == 50.0
    assert first_wait_spread(1800.0, 0.1, 1800.0) == 0.0
    plan = plan_of(StatusSchedule.of((0, 1750), (1750, 300)), jitter=0.1)
    rng = random.Random(3)
    first = [next_poll_delay(plan, "gu1", IN_REVIEW, 0.0, rng) for _ in range(2000)]
    assert max(first) <= 1800.0 and min(first) >= 1700.0
    assert sum(first) / len(first) == pytest.approx(1750.0, abs=3.0)


def test_an_early_first_poll_stays_early_until_a_denser_phase_re_anchors_it():
    schedule = StatusSchedule.of((0, 200), (200, 60), (1000, 20))
    # A first poll 20 s early (jitter): the 60 s phase keeps its rhythm from there ...
    assert schedule.nominal_delay(180) == 60
    assert schedule.nominal_delay(960) == 40  # ... and the denser phase's start re-anchors it


def test_the_maximum_gap_caps_every_wait_of_its_status():
    plan = plan_of(StatusSchedule.of((0, 60), (600, 3600))).with_max_gaps({IN_REVIEW: 900.0})
    rng = random.Random(2)
    assert next_poll_delay(plan, "gu1", IN_REVIEW, 5000.0, rng) == 900.0
    assert next_poll_delay(plan, "gu1", PENDING, 5000.0, rng) == DEFAULT_MAX_GAP_SECONDS
    assert next_poll_delay(plan, "gu1", IN_REVIEW, 100.0, rng) == 60.0
    assert plan.max_gap(IN_REVIEW) == 900.0
    # Overrides keep the caps.
    override = plan.with_overrides("gu1", {IN_REVIEW: StatusSchedule.of((0, 5000))})
    assert next_poll_delay(override, "gu1", IN_REVIEW, 10.0, rng) == 900.0


@pytest.mark.parametrize("gap", [0.5, 31 * 86400.0])
def test_a_maximum_gap_out_of_bounds_is_refused(gap):
    with pytest.raises(ValueError, match="maximum gap"):
        DEFAULT_PLAN.with_max_gaps({IN_REVIEW: gap})
    with pytest.raises(ValueError, match="terminal"):
        DEFAULT_PLAN.with_max_gaps({VerificationStatus.APPROVED: 600.0})


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


def test_users_are_polled_every_minute_from_their_third_minute_to_half_an_hour():
    user = DEFAULT_PLAN.schedule_for("gu1", PENDING)
    assert user is not None
    assert user.first_wait == 180  # GUESS: nobody finishes a flow within 2 min
    times = user.offsets(1800)
    gaps = [b - a for a, b in pairwise(times)]
    assert max(gaps) == 60  # after the first poll, every change is seen within 60 s
    for status in (VerificationStatus.IN_PROGRESS, VerificationStatus.RETRY):
        assert DEFAULT_PLAN.schedule_for("gu1", status) == user


def test_reviews_are_polled_densely_with_one_sparse_block_at_the_cap():
    review = DEFAULT_PLAN.schedule_for("gu1", IN_REVIEW)
    assert review is not None
    cap = DEFAULT_PLAN.max_gap(IN_REVIEW)
    assert cap == 1800
    gaps = [b - a for a, b in pairwise([0.0, *review.offsets(40 * 86400, cap)])]
    assert min(gaps) >= 120 and max(gaps) <= cap
    # A short review (5-60 min) is seen within 4 min: every gap of the first hour.
    first_hour = [
        gap for at, gap in zip(review.offsets(3600, cap), gaps, strict=False) if at <= 3600
    ]
    assert first_hour[0] == 360 and max(first_hour[1:]) <= 240
    # The p95's allowance is spent in one block of 4.5-6.5 h at the cap; a day's reviews are
    # otherwise polled at least every 8 min, so nothing outside the block waits longer.
    times = review.offsets(86400, cap)
    sparse = [at for at, gap in zip(times, gaps, strict=False) if gap > 480]
    assert sparse and min(sparse) > 4.5 * 3600 and max(sparse) <= 6.5 * 3600 + 1


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


def test_plan_from_env_reads_maximum_gaps_per_status():
    plan = plan_from_env(
        {"KYC_POLL_MAX_GAP_IN_REVIEW": "600", "KYC_POLL_MAX_GAP_PENDING": " 90.5 "}, PROVIDERS
    )
    assert plan.max_gap(IN_REVIEW) == 600.0
    assert plan.max_gap(PENDING) == 90.5
    assert plan.max_gap(VerificationStatus.RETRY) == DEFAULT_MAX_GAP_SECONDS


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("KYC_POLL_MAX_GAP_IN_REVIEW", "0.5", "must be within"),
        ("KYC_POLL_MAX_GAP_IN_REVIEW", "3000000", "must be within"),
        ("KYC_POLL_MAX_GAP_IN_REVIEW", "ten", "is not a number"),
        ("KYC_POLL_MAX_GAP_IN_REVIEW", "nan", "finite number"),
        ("KYC_POLL_MAX_GAP_APPROVED", "600", "terminal"),
        ("KYC_POLL_MAX_GAP_REVIEW", "600", "unknown status"),
    ],
)
def test_bad_maximum_gaps_name_their_variable(variable, value, message):
    with pytest.raises(ScheduleConfigError, match=variable) as error:
        plan_from_env({variable: value}, PROVIDERS)
    assert message in str(error.value)


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
    assert "30 min (`KYC_POLL_MAX_GAP_IN_REVIEW`)" in table


def test_settings_round_trip_through_the_parser():
    for schedule in DEFAULT_PLAN.statuses.values():
        assert parse_schedule(schedule.to_setting(), variable="X") == schedule
