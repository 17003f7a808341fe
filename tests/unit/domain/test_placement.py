"""The placement optimiser: exact on its grid (checked against brute force), its hull and
covers consistent, the gap cap kept, and the window search monotone in the budget."""

import math
import random

import pytest

from worker.domain.placement import (
    FunctionChanges,
    cheapest_within,
    expected_requests,
    grid_for,
    late_share,
    narrowest_within,
    place,
)


def uniform(low: float, high: float) -> FunctionChanges:
    return FunctionChanges(lambda t: min(max((t - low) / (high - low), 0.0), 1.0), high)


def lumpy() -> FunctionChanges:
    """A two-humped distribution on [0, 1000]: a schedule must cover two stretches."""

    def cdf(t: float) -> float:
        first = min(max((t - 100) / 100, 0.0), 1.0)
        second = min(max((t - 700) / 200, 0.0), 1.0)
        return 0.4 * first + 0.6 * second

    return FunctionChanges(cdf, 1000.0)


def brute_force(changes, window, price, max_gap=math.inf):
    """The same objective by an O(n^2) search over every next poll on the same grid."""
    grid = grid_for(changes, window, max_gap)
    n, step = grid.size, grid.step
    value = [0.0] * (n + 1)
    for i in range(n - 1, -1, -1):
        alive = 1.0 - grid.cdf[i]
        if alive <= 0:
            continue
        best = math.inf
        for j in range(i + 1, min(n, i + grid.cap) + 1):
            late = max(0.0, grid.shifted[j] - grid.cdf[i]) if (j - i) * step > window else 0.0
            best = min(best, price * late + value[j])
        value[i] = alive + best
    return value[0]


@pytest.mark.parametrize("changes", [uniform(300, 1500), lumpy()], ids=["uniform", "lumpy"])
@pytest.mark.parametrize("price", [0.0, 5.0, 40.0, 1e6])
@pytest.mark.parametrize("max_gap", [math.inf, 150.0])
def test_the_dynamic_programme_is_exact_on_its_grid(changes, price, max_gap):
    found = place(changes, 60.0, price, max_gap=max_gap)
    # The placement's own figures, recomputed along its polls, are what the DP minimised.
    assert found.requests == pytest.approx(expected_requests(changes, found.polls))
    assert found.late == pytest.approx(late_share(changes, found.polls, 60.0), abs=1e-9)
    objective = found.requests + price * found.late
    assert objective == pytest.approx(brute_force(changes, 60.0, price, max_gap), rel=1e-9)
    assert found.longest_gap <= max_gap + 1e-9
    assert changes.cdf(found.polls[-1]) == 1.0  # the last poll sees every change


def test_a_price_of_nothing_polls_once_and_a_prohibitive_one_sees_everything_in_time():
    changes = uniform(300, 1500)
    cheap = place(changes, 60.0, 0.0)
    assert cheap.polls == (1500.0,) and cheap.requests == 1.0
    dense = place(changes, 60.0, 1e7)
    assert dense.late == 0.0
    # Nothing before the first change can come: the first poll waits for it.
    assert dense.polls[0] == pytest.approx(360.0)
    assert max(b - a for a, b in zip(dense.polls, dense.polls[1:], strict=False)) <= 60.0


@pytest.mark.parametrize("allowance", [0.0, 0.05, 0.1, 0.3])
def test_a_cover_brackets_its_allowance_and_its_mixture_meets_it(allowance):
    changes = uniform(120, 1200)
    cover = cheapest_within(changes, 60.0, allowance)
    assert cover.feasible
    assert cover.upper.late <= allowance + 1e-9
    assert cover.pure.late <= allowance + 1e-9
    if cover.lower is not cover.upper:
        assert cover.lower.late > allowance
        assert cover.mixed_late == pytest.approx(allowance)
    assert cover.mixed_requests <= cover.pure.requests + 1e-9 <= cover.upper.requests + 1e-9


def test_the_user_phase_cover_matches_its_closed_form():
    """Uniform users on [120, 1200] s, 95 % within 60 s: skip the first 5 % (54 s) of them,
    then poll every 60 s: the first poll at 234 s. Requests: sum of S at the polls before."""
    changes = uniform(120, 1200)
    cover = cheapest_within(changes, 60.0, 0.05)
    polls = [234.0 + 60.0 * k for k in range(17)] + [1254.0]
    closed = expected_requests(changes, polls)
    assert cover.mixed_requests == pytest.approx(closed, abs=0.05)
    assert cover.mixed_requests == pytest.approx(8.65, abs=0.01)  # the figure
    assert 225.0 <= cover.pure.polls[0] <= 240.0


def test_the_gap_cap_costs_requests_and_holds():
    changes = uniform(3600, 86400)
    free = cheapest_within(changes, 320.0, 0.1)
    capped = cheapest_within(changes, 320.0, 0.1, max_gap=1800.0)
    assert free.pure.longest_gap > 3 * 3600
    assert capped.pure.longest_gap <= 1800.0 + 1e-9
    assert capped.mixed_requests > free.mixed_requests


def test_an_allowance_the_cap_cannot_meet_is_reported():
    changes = uniform(0, 100)
    cover = cheapest_within(changes, 5.0, 0.0, max_gap=1.0)  # grid of 0.625 s: feasible
    assert cover.feasible and cover.pure.late == 0.0
    with pytest.raises(ValueError):
        cheapest_within(changes, 5.0, 1.0)
    with pytest.raises(ValueError):
        place(changes, 0.0, 1.0)
    with pytest.raises(ValueError):
        place(changes, 5.0, 1.0, max_gap=0.0)


@pytest.mark.parametrize("mixed", [False, True])
def test_the_narrowest_window_grows_as_the_budget_shrinks(mixed):
    changes = uniform(300, 3600)
    windows = []
    for budget in (6.0, 9.0, 14.0):
        cover = narrowest_within(changes, budget, 0.1, max_gap=600.0, mixed=mixed)
        assert cover is not None
        spend = cover.mixed_requests if mixed else cover.pure.requests
        assert spend <= budget + 1e-9
        # A window 2 % narrower would spend more than the budget.
        tighter = cheapest_within(changes, cover.window * 0.98, 0.1, max_gap=600.0)
        assert (tighter.mixed_requests if mixed else tighter.pure.requests) > budget
        windows.append(cover.window)
    assert windows == sorted(windows, reverse=True)


def test_no_window_fits_a_budget_below_one_poll():
    assert narrowest_within(uniform(300, 3600), 0.5, 0.1) is None


def test_late_share_counts_what_follows_the_last_poll():
    changes = uniform(0, 100)
    assert late_share(changes, [50.0], 10.0) == pytest.approx(0.4 + 0.5)
    assert late_share(changes, [10.0 * k for k in range(1, 11)], 10.0) == 0.0
    assert expected_requests(changes, [50.0, 100.0]) == pytest.approx(1.5)


def test_a_random_distribution_is_placed_exactly_too():
    rng = random.Random(5)
    steps = sorted(rng.uniform(0, 2000) for _ in range(6))
    weights = [rng.random() for _ in steps]
    total = sum(weights)

    def cdf(t: float) -> float:
        return sum(w for s, w in zip(steps, weights, strict=True) if s <= t) / total

    changes = FunctionChanges(cdf, 2000.0)
    for price in (3.0, 30.0):
        found = place(changes, 90.0, price, max_gap=400.0)
        objective = found.requests + price * found.late
        assert objective == pytest.approx(brute_force(changes, 90.0, price, 400.0), rel=1e-9)
