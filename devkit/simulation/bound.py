"""How few requests any polling schedule can spend for a given p95 detection delay.

The simulator (`devkit.simulation.schedule`) prints where its goals sit against what is possible
at all, so that a FAIL line says whether the schedule or the goal is at fault; `optimum` computes
the exact optimum, which this bound must never exceed. Pure math, no product code.

The setting is the simulator's: a lifecycle has two changes, the user's (after tracking) and the
review's decision (after the user's change). A *phase* is the wait for one change; the change
comes C seconds into it, C drawn from a known distribution with survival S(t) = P(C > t) and a
density f that is monotone or unimodal. A schedule polls the phase at times p_0 < p_1 < ...
(random choices allowed; it may even know the distribution and the exact start of the phase)
and stops at the first poll at or after C.

Claim: if the polls p_1, p_2, ... see all but a fraction q of changes within D, the expected
number of them that are made is at least

    g(D, q) = min { (1/D) * integral over U of S(c + D) dc :  P(C in U) >= 1 - q }.

Proof: a change at c waits at most D iff some poll lies in [c, c + D], so the changes seen
within D form a set U covered by the windows [p_k - D, p_k]. Poll p_{k+1} is made iff C > p_k,
so the polls after p_0 that are made number sum_{k>=0} S(p_k) in expectation; charge each to
the poll before it. For every c in p_k's window S(p_k) >= S(c + D) (S does not increase), so
S(p_k) >= (1/D) * integral over the window of S(c + D) dc; summing over the windows that cover
U gives the claim. A random schedule is a mixture of fixed ones (the review's polls may depend
on the user's change time and on random draws; the review's duration is independent of both);
g is convex in q, so the bound holds for the mean (Jensen).

Per lifecycle, with C_user the user's change and the review's clock starting there, requests
are: the poll at tracking (p_0 of the user phase: the user cannot have finished at 0), the
polls after it up to the one that sees the user's change (the next one is always made: 1,
plus g_user for those after it, since they must see all but 5 % of user changes within 60 s),
then the polls after that one up to the one that sees the decision. That last group starts
at the poll that saw the user's change, d seconds into the review; it sees no decision when d
is shorter than the shortest review, which the first-change goal makes true for 95 % of
lifecycles when the shortest review is at least 60 s. A p95 over two changes per lifecycle
lets at most 10 % of decisions wait longer than D (even if every user change is seen in
time). So

    requests >= 2 + g_user(60 s, 0.05) + 0.95 [shortest review >= 60 s] + g_review(D, 0.10).

g is a fractional knapsack: take the c with the smallest S(c + D) / f(c) first. On a grid whose
cells charge S at their right edge plus D and the largest density in the cell (`densest`: an
end of the cell, or the mode inside it), every cell's cost is under-estimated, so the computed
figure is still a lower bound. For a uniform C on [a, b] (width W) it has a closed form, used by the
tests: ((1 - q) W - D)^2 / (2 W D) for D <= (1 - q) W. The bound is loose by about half a poll
per phase (a real poll's window is charged at its right end, not spread over it).

The minimising U also says how a schedule comes near the bound: it never polls early in a
phase, where polls are dearest (nearly every verification is still waiting) and the quantile
forgives the changes it misses, then polls every D. That is a yardstick, not a schedule to
run: the p95 hides the decisions it leaves waiting for hours.
"""

from __future__ import annotations

import argparse
import functools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from devkit.simulation.lifecycles import DEFAULT_DISTRIBUTIONS, Span, draw_lifecycles

GRID_CELLS = 4000
USER_MISS = 0.05  # the first-change goal is a p95
REVIEW_MISS = 0.10  # a p95 over two changes per lifecycle, all of it spent on decisions
FIXED_POLLS = 2.0  # the poll at tracking and the one after it


@dataclass(frozen=True)
class Cell:
    """A grid cell of the change time: its span, probability mass and cost per unit of mass."""

    start: float
    end: float
    mass: float
    cost_per_mass: float


def cells(change: Span, window: float, count: int = GRID_CELLS) -> list[Cell]:
    """The grid, each cell charged as little as any schedule could be charged for it."""
    grid: list[Cell] = []
    for start, end, mass, densest in _cell_masses(change, count):
        survival = 1.0 - change.cdf(end + window)
        # (1/D) * integral of S(c + D) over the part of the cell holding `mass`, at its least.
        grid.append(Cell(start, end, mass, survival / (window * densest)))
    return grid


@functools.lru_cache(maxsize=64)
def _cell_masses(change: Span, count: int) -> tuple[tuple[float, float, float, float], ...]:
    """Each cell's span, mass and densest density (they do not depend on the window)."""
    width = (change.high - change.low) / count
    found: list[tuple[float, float, float, float]] = []
    for index in range(count):
        start = change.low + index * width
        end = change.high if index == count - 1 else start + width
        mass = change.cdf(end) - change.cdf(start)
        if mass > 0:
            found.append((start, end, mass, max(change.densest(start, end), mass / (end - start))))
    return tuple(found)


def chosen_cells(change: Span, window: float, miss: float) -> list[tuple[Cell, float]]:
    """The cheapest cells holding 1 - `miss` of the mass, with the fraction of each taken."""
    need = 1.0 - miss
    taken: list[tuple[Cell, float]] = []
    for cell in sorted(cells(change, window), key=lambda cell: cell.cost_per_mass):
        if need <= 0:
            break
        fraction = min(1.0, need / cell.mass)
        taken.append((cell, fraction))
        need -= cell.mass * fraction
    return taken


@functools.lru_cache(maxsize=4096)
def fewest_polls(change: Span, window: float, miss: float) -> float:
    """g(window, miss): a lower bound on the expected polls made before the change."""
    if not (window > 0 and 0 <= miss < 1):
        raise ValueError("need window > 0 and 0 <= miss < 1")
    return sum(
        cell.cost_per_mass * cell.mass * fraction
        for cell, fraction in chosen_cells(change, window, miss)
    )


def fewest_requests(user: Span, review: Span, p95: float, first_p95: float) -> float:
    """A lower bound on requests per verification for this p95 and first-change p95."""
    # The poll that sees the user's change in time cannot also see a decision.
    blind = (1.0 - USER_MISS) if review.low >= first_p95 else 0.0
    return (
        FIXED_POLLS
        + fewest_polls(user, first_p95, USER_MISS)
        + blind
        + fewest_polls(review, p95, REVIEW_MISS)
    )


def smallest_p95(user: Span, review: Span, requests: float, first_p95: float) -> float:
    """The least p95 any schedule can reach within `requests` (inf if even that is too few)."""
    if fewest_requests(user, review, 1e12, first_p95) > requests:
        return math.inf
    low, high = 1e-3, 1e12  # fewest_requests falls as the p95 grows
    for _ in range(200):
        middle = math.sqrt(low * high)
        if fewest_requests(user, review, middle, first_p95) > requests:
            low = middle
        else:
            high = middle
        if high / low < 1.0005:
            break
    return high


def covering_polls(change: Span, window: float, miss: float) -> list[float]:
    """Poll times (into the phase) that see the chosen changes within `window`: a schedule
    that comes near the bound, for the simulator to run. Each poll closes a window starting
    at the earliest chosen change not yet seen (a cell wider than the window takes several)."""
    polls: list[float] = []
    for cell in sorted((cell for cell, _ in chosen_cells(change, window, miss)), key=_start):
        begin = cell.start if not polls else max(cell.start, polls[-1])
        while begin < cell.end:
            polls.append(begin + window)
            begin = polls[-1]
    return polls


def _start(cell: Cell) -> float:
    return cell.start


def main(argv: Sequence[str] | None = None) -> int:
    """The bound for each default distribution within today's requests (measured here)."""
    from devkit.simulation.replay import (
        equal_requests_p95,
        simulate,
        today_policy,
    )
    from worker.domain.backoff import BackoffSettings

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--verifications", type=int, default=3000)
    args = parser.parse_args(argv)
    for distribution in DEFAULT_DISTRIBUTIONS:
        lifecycles = draw_lifecycles(distribution, args.verifications, seed=0)
        budget = simulate(
            lifecycles, today_policy(BackoffSettings()), random.Random(0)
        ).mean_requests
        p95 = smallest_p95(distribution.user, distribution.review, budget, 60.0)
        _, fixed = equal_requests_p95(lifecycles, budget)
        print(
            f"{distribution.name}: within {budget:.1f} requests and a first-change p95 <= 60 s, "
            f"no schedule's p95 is below {p95:.0f} s ({p95 / fixed:.3f}x a fixed interval's)"
        )
    return 0
