"""The lower bound the simulator prints: exact where it has a closed form, never above what a
schedule actually spends, and reachable by the schedule it describes."""

import math
import random

import pytest

from devkit.simulation import bound
from devkit.simulation import replay as sim
from devkit.simulation.lifecycles import DEFAULT_DISTRIBUTIONS, LogNormal, Uniform, draw_lifecycles
from worker.domain.backoff import BackoffSettings
from worker.domain.schedule import DEFAULT_PLAN

A, B, C = DEFAULT_DISTRIBUTIONS


def uniform_closed_form(span, window, miss):
    width = span.high - span.low
    covered = (1 - miss) * width - window
    return max(covered, 0.0) ** 2 / (2 * width * window)


@pytest.mark.parametrize("span", [A.user, A.review, B.review])
@pytest.mark.parametrize("miss", [0.0, 0.05, 0.1])
@pytest.mark.parametrize("window", [30.0, 300.0, 900.0])
def test_uniform_change_times_match_the_closed_form(span, miss, window):
    expected = uniform_closed_form(span, window, miss)
    computed = bound.fewest_polls(span, window, miss)
    assert computed <= expected + 1e-9  # the grid only ever under-charges ...
    assert computed == pytest.approx(expected, rel=0.01, abs=0.01)  # ... and barely


@pytest.mark.parametrize(
    "span",
    [
        A.review,
        B.review,
        Uniform(300.0, 3600.0, log=True),
        Uniform(60.0, 86400.0, log=True),
        LogNormal(7200.0, 1.2),
    ],
)
@pytest.mark.parametrize("window", [60.0, 600.0])
def test_the_schedule_the_bound_describes_costs_what_the_bound_says(span, window):
    """Any schedule is a check from above: the covering polls see all but 10 % of changes
    within the window and expect sum S(t_k) polls before the change."""
    polls = bound.covering_polls(span, window, 0.1)
    spent = sum(1.0 - span.cdf(at) for at in polls)
    least = bound.fewest_polls(span, window, 0.1)
    assert least <= spent <= least * 1.05 + 1.0


def test_more_tolerance_or_a_longer_window_never_costs_more():
    costs = [bound.fewest_polls(A.review, window, 0.1) for window in (60, 120, 600, 3600)]
    assert costs == sorted(costs, reverse=True)
    misses = [bound.fewest_polls(A.review, 600, miss) for miss in (0.0, 0.05, 0.1, 0.5)]
    assert misses == sorted(misses, reverse=True)


def test_bad_arguments_are_refused():
    for window, miss in ((0.0, 0.1), (-5.0, 0.1), (60.0, 1.0), (60.0, -0.1)):
        with pytest.raises(ValueError):
            bound.fewest_polls(A.user, window, miss)


def test_a_constant_change_time_costs_nothing_to_bound():
    # A degenerate span has no width to skip or cover; the bound falls back to 0 polls.
    assert bound.fewest_polls(Uniform(600.0, 600.0), 60.0, 0.05) == 0.0


def test_smallest_p95_inverts_fewest_requests_and_says_when_nothing_will_do():
    p95 = bound.smallest_p95(A.user, A.review, 115.0, 60.0)
    assert bound.fewest_requests(A.user, A.review, p95, 60.0) <= 115.0
    assert bound.fewest_requests(A.user, A.review, p95 * 0.99, 60.0) > 115.0
    # Fewer requests than the first-change goal alone needs: no p95 is reachable.
    assert bound.smallest_p95(A.user, A.review, 5.0, 60.0) == math.inf


def policies():
    """Schedules of every shape the simulator knows, each run on the same lifecycles."""
    yield "today", sim.today_policy(BackoffSettings())
    yield "static", sim.plan_policy(DEFAULT_PLAN)
    for interval in (30.0, 120.0, 400.0):
        yield f"fixed {interval}", sim.Stateless(lambda _context, interval=interval: interval)
    # Sparse early in a status, dense later: the shape the bound rewards.
    yield (
        "ramp",
        sim.Stateless(lambda context: 600.0 if context.seconds_in_status < 3600 else 90.0),
    )


@pytest.mark.parametrize("distribution", [A, B, C], ids=["A", "B", "C"])
def test_no_schedule_spends_fewer_requests_than_the_bound_allows(distribution):
    lifecycles = draw_lifecycles(distribution, 1500, seed=5)
    for name, policy in policies():
        result = sim.simulate(lifecycles, policy, random.Random(3))
        first_p95 = sim.percentile(result.first_change_delays, 0.95)
        least = bound.fewest_requests(distribution.user, distribution.review, result.p95, first_p95)
        assert result.mean_requests >= least * 0.98, name  # 2 %: a sample of 1,500


@pytest.mark.parametrize("window", [300.0, 10.0])  # 10 s: narrower than a grid cell
def test_covering_polls_see_every_chosen_change_within_the_window(window):
    polls = bound.covering_polls(A.review, window, 0.1)
    chosen = bound.chosen_cells(A.review, window, 0.1)
    assert polls == sorted(polls)
    for cell, _fraction in chosen:
        for change in [cell.start + (cell.end - cell.start) * k / 8 for k in range(9)]:
            seen = next(at for at in polls if at >= change)
            assert seen - change <= window + 1e-6
    # Nothing is polled before the first chosen change could be seen late.
    assert polls[0] == pytest.approx(min(cell.start for cell, _ in chosen) + window)


def test_the_poll_that_sees_the_user_cannot_see_a_decision_unless_reviews_can_be_short():
    slow, fast = Uniform(300.0, 3600.0), Uniform(10.0, 3600.0)
    base = {
        span: bound.FIXED_POLLS
        + bound.fewest_polls(A.user, 60.0, 0.05)
        + bound.fewest_polls(span, 200.0, 0.1)
        for span in (slow, fast)
    }
    # Reviews of at least 5 min: the poll seeing the user's change within 60 s (95 % of
    # them) sees no decision, and counts; reviews as short as 10 s: it might, so it does not.
    assert bound.fewest_requests(A.user, slow, 200.0, 60.0) == pytest.approx(base[slow] + 0.95)
    assert bound.fewest_requests(A.user, fast, 200.0, 60.0) == pytest.approx(base[fast])
