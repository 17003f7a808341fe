"""The exact optimum: the lowest p95 any schedule (or random mixture of schedules) reaches
within a request budget, with the first change seen within 60 s at p95, knowing the true
distribution; optionally with no gap between polls of a review above a cap.

Computed, not looked up: the product's placement optimiser (`worker.domain.placement`, an
exact dynamic programme over poll times on a grid, its price swept along the lower hull, so
mixtures are allowed) is run on the distribution itself:

1. the user phase: the fewest requests that see 95 % of user changes within 60 s (the mixture
   of the two hull placements either side of 5 % late);
2. the review phase, in kyc-poller's clock (it starts at the poll that saw the user's change,
   d seconds after it, d distributed as step 1's detection delays: the decision comes R - d
   into it): the narrowest window D whose cover, with the mixture, spends the budget left,
   seeing all but 10 % of decisions within D less the user changes later than D.

A p95 over all changes at D then holds exactly: 5 % of changes are later than D (the user's
are all within 60 s but 5 %, and those within D unless step 1 says otherwise, which the
report prints). Exact up to the grid (cells of D/8; a finer grid changes the figure by under
0.5 %): each figure is what a real placement achieves, so it sits above the knapsack bound.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from devkit.simulation.lifecycles import Distribution, Span
from devkit.simulation.replay import PollContext, Waits
from worker.domain.placement import (
    Cover,
    FunctionChanges,
    Placement,
    cheapest_within,
    late_share,
    narrowest_within,
)
from worker.domain.statuses import VerificationStatus

FIRST_CHANGE_WINDOW = 60.0
FIRST_CHANGE_MISS = 0.05
DECISION_MISS = 0.10  # a p95 over two changes per lifecycle
DELAY_QUANTILES = 8  # points standing for the user phase's detection delay
TABLE_POINTS = 8_000  # the review clock's CDF is tabulated on this many points


@dataclass(frozen=True)
class Optimum:
    """The lowest p95 (`window`) within `budget`, and the covers that reach it."""

    budget: float
    window: float
    user: Cover
    review: Cover
    user_late: float  # share of user changes later than `window`
    max_gap: float

    @property
    def requests(self) -> float:
        return 1.0 + self.user.mixed_requests + self.review.mixed_requests


def exact_optimum(
    distribution: Distribution, budget: float, *, max_gap: float = math.inf
) -> Optimum | None:
    """The optimum within `budget` requests per verification (None: the first-change goal
    alone needs more). `max_gap` caps the gaps between polls of a review."""
    user = cheapest_within(span_changes(distribution.user), FIRST_CHANGE_WINDOW, FIRST_CHANGE_MISS)
    left = budget - 1.0 - user.mixed_requests
    if left <= 0:
        return None
    review_clock = _review_clock(distribution, user)
    user_late = 0.0
    cover: Cover | None = None
    for _ in range(2):  # the users' late share depends on the window: one correction
        allowance = max(DECISION_MISS - user_late, 0.0)
        cover = narrowest_within(review_clock, left, allowance, max_gap=max_gap, mixed=True)
        if cover is None:
            return None
        late = _mixed_late(distribution.user, user, cover.window)
        if late <= user_late + 1e-6:
            break
        user_late = late
    assert cover is not None
    return Optimum(budget, cover.window, user, cover, user_late, max_gap)


class OptimumPolicy:
    """The optimum as a schedule to replay: each verification picks one placement per phase,
    with the mixture's weights; polls land on the placement's times (no jitter)."""

    def __init__(self, optimum: Optimum) -> None:
        self.optimum = optimum

    def verification(self, rng: random.Random) -> Waits:
        user = _pick(self.optimum.user, rng)
        review = _pick(self.optimum.review, rng)

        def waits(context: PollContext) -> float:
            placement = review if context.status is VerificationStatus.IN_REVIEW else user
            return _next(placement, context.seconds_in_status)

        return waits


def span_changes(span: Span) -> FunctionChanges:
    """A span as the placement optimiser reads changes (its CDF up to its end)."""
    return FunctionChanges(span.cdf, span.high)


def _pick(cover: Cover, rng: random.Random) -> Placement:
    return cover.upper if rng.random() < cover.weight else cover.lower


def _next(placement: Placement, elapsed: float) -> float:
    for at in placement.polls:
        if at > elapsed + 1e-9:
            return at - elapsed
    return placement.max_gap if math.isfinite(placement.max_gap) else 1800.0


def _mixed_late(span: Span, cover: Cover, window: float) -> float:
    changes = span_changes(span)
    lower = late_share(changes, cover.lower.polls, window)
    upper = late_share(changes, cover.upper.polls, window)
    return lower + cover.weight * (upper - lower)


def _review_clock(distribution: Distribution, user: Cover) -> FunctionChanges:
    """The decision's time in kyc-poller's review clock: R - d, d the user's detection delay
    under the user cover (its quantiles), R the review's duration."""
    delays = _delay_quantiles(distribution.user, user)
    review = distribution.review
    step = review.high / TABLE_POINTS
    table = [
        sum(review.cdf(index * step + d) for d in delays) / len(delays)
        for index in range(TABLE_POINTS + 1)
    ]

    def cdf(seconds: float) -> float:
        position = seconds / step
        index = int(position)
        if index < 0:
            return 0.0
        if index >= TABLE_POINTS:
            return table[-1]
        share = position - index
        return table[index] + share * (table[index + 1] - table[index])

    return FunctionChanges(cdf, review.high)


def _delay_quantiles(span: Span, cover: Cover) -> list[float]:
    """DELAY_QUANTILES midpoint quantiles of the user's detection delay under the mixture."""

    def below(delay: float) -> float:  # P(detection delay <= delay)
        total = 0.0
        for placement, weight in ((cover.lower, 1.0 - cover.weight), (cover.upper, cover.weight)):
            previous = 0.0
            share = 0.0
            for at in placement.polls:
                start = max(previous, at - delay)
                if at > start:
                    share += span.cdf(at) - span.cdf(start)
                previous = at
            total += weight * share
        return total

    quantiles: list[float] = []
    for index in range(DELAY_QUANTILES):
        target = (index + 0.5) / DELAY_QUANTILES
        low, high = 0.0, max(placement_span(cover), 1.0)
        for _ in range(40):
            middle = (low + high) / 2
            if below(middle) >= target:
                high = middle
            else:
                low = middle
        quantiles.append(high)
    return quantiles


def placement_span(cover: Cover) -> float:
    """The longest gap of either placement (no delay is longer)."""
    return max(cover.lower.longest_gap, cover.upper.longest_gap)
