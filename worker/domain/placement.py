"""Where to poll one status, optimally, when the distribution of its change time is known.

The setting: a verification enters a status at 0 (kyc-poller's clock: the poll that saw it
enter); its change comes C seconds later, C with a known CDF F on [0, horizon]. A placement
polls at t_1 < t_2 < ... (the last at or past the horizon); poll t_k is made only if the
change had not been seen at t_(k-1) (t_0 = 0), so it costs P(C > t_(k-1)) requests in
expectation, and a change at c is seen by the first poll at or after it. For a `window` W, a
change is *late* if it waits longer than W.

`place` finds, on a time grid, the placement minimising

    requests + price * P(late)

exactly (dynamic programming over poll times, O(grid) per call: within a gap of at most W
nothing is late, so the best next poll there is a sliding-window minimum; past W the late
mass F(t' - W) - F(t) splits into a term of t' and one of t, another sliding-window
minimum). A gap is never longer than `max_gap`. Sweeping the price traces the lower convex
hull of (requests, P(late)): what any schedule, or any random mixture of schedules, can
reach. `cheapest_within` finds the hull point at a given share of late changes (the two
placements either side and their mixture), `narrowest_within` the smallest window a
request budget affords. Pure functions; grids and iterations are bounded (`MAX_GRID`,
`MAX_HULL_STEPS`, `MAX_WINDOW_STEPS`), so a call costs milliseconds to a second.

Invariants: the placements returned are real schedules (their requests and late share are
computed along their own polls, not estimated); the gap cap holds for every gap; grids only
restrict where polls may go, so a figure is what that placement achieves, never a bound.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

# Grid cells per window (finer than this changes the optimum by well under 1 %) and the
# largest grid (a horizon of days with a window of minutes is coarsened to this).
STEPS_PER_WINDOW = 8
MAX_GRID = 6000
MAX_HULL_STEPS = 40
MAX_WINDOW_STEPS = 40
WINDOW_PRECISION = 0.002  # narrowest_within stops within 0.2 % of the window
# A price above any request count: P(late) is then as small as the gap cap lets it be.
PROHIBITIVE_PRICE = 1e7


class ChangeTimes(Protocol):
    """When a status's change comes, in seconds into the status."""

    @property
    def horizon(self) -> float:
        """Where the placement ends: P(C <= horizon) is all that is known (1, or nearly)."""
        ...

    def cdf(self, seconds: float) -> float: ...


@dataclass(frozen=True)
class Placement:
    """Poll times into the status and what they achieve for their window."""

    polls: tuple[float, ...]
    window: float
    requests: float  # expected polls made, up to the last poll
    late: float  # P(the change waits longer than the window)
    max_gap: float  # the cap the placement was built under (inf: none)

    @property
    def longest_gap(self) -> float:
        previous, longest = 0.0, 0.0
        for at in self.polls:
            longest = max(longest, at - previous)
            previous = at
        return longest


@dataclass(frozen=True)
class Cover:
    """The cheapest ways to see all but `allowance` of changes within `window`.

    `lower` and `upper` are adjacent points of the lower hull with `lower.late > allowance
    >= upper.late` (both `upper` when the cheapest placement already meets it); a random
    mixture choosing `upper` with probability `weight` meets the allowance exactly at
    `mixed_requests`, the least any schedule or mixture can spend. `pure` is the cheapest
    single placement found within the allowance (for a product that runs one schedule).
    `feasible` is False when even the densest placement under the cap is late too often.
    """

    window: float
    allowance: float
    lower: Placement
    upper: Placement
    weight: float
    pure: Placement
    feasible: bool

    @property
    def mixed_requests(self) -> float:
        return self.lower.requests + self.weight * (self.upper.requests - self.lower.requests)

    @property
    def mixed_late(self) -> float:
        return self.lower.late + self.weight * (self.upper.late - self.lower.late)


@dataclass(frozen=True)
class _Grid:
    step: float
    size: int  # grid points 0..size; point `size` is at or past the horizon
    within: int  # gaps of at most this many steps are never late
    cap: int  # no gap longer than this many steps
    cdf: list[float]  # F at each point
    shifted: list[float]  # F(point - window)


def grid_for(changes: ChangeTimes, window: float, max_gap: float = math.inf) -> _Grid:
    """Cells of window / STEPS_PER_WINDOW (coarser past MAX_GRID points), never above the cap."""
    if not (window > 0 and math.isfinite(window)):
        raise ValueError("window must be a positive number of seconds")
    if not max_gap > 0:
        raise ValueError("max_gap must be greater than 0")
    horizon = max(changes.horizon, window)
    step = max(window / STEPS_PER_WINDOW, horizon / MAX_GRID)
    step = min(step, max_gap) if math.isfinite(max_gap) else step
    size = max(1, math.ceil(horizon / step - 1e-9))
    within = int(window / step + 1e-9)
    cap = size if not math.isfinite(max_gap) else max(1, int(max_gap / step + 1e-9))
    cdf = [_clamp(changes.cdf(index * step)) for index in range(size + 1)]
    shifted = [_clamp(changes.cdf(index * step - window)) for index in range(size + 1)]
    return _Grid(step, size, within, cap, cdf, shifted)


def place(
    changes: ChangeTimes, window: float, price: float, *, max_gap: float = math.inf
) -> Placement:
    """The placement minimising requests + price * P(late) on the grid (see the module)."""
    return _place(grid_for(changes, window, max_gap), window, price, max_gap)


def cheapest_within(
    changes: ChangeTimes, window: float, allowance: float, *, max_gap: float = math.inf
) -> Cover:
    """The least requests that see all but `allowance` of changes within `window`."""
    if not 0.0 <= allowance < 1.0:
        raise ValueError("allowance must be within [0, 1)")
    grid = grid_for(changes, window, max_gap)
    return _cover(grid, window, allowance, max_gap)


def narrowest_within(
    changes: ChangeTimes,
    budget: float,
    allowance: float,
    *,
    max_gap: float = math.inf,
    mixed: bool = False,
    min_window: float = 1.0,
) -> Cover | None:
    """The smallest window (at least `min_window`) whose cover spends at most `budget`
    requests (None: no window does).

    `mixed`: count a cover's mixture (the least possible); else its pure placement (what
    one schedule spends). The requests a cover needs fall as its window grows: the window
    is bracketed around the one a plain cover of the whole status would need (its alive
    time over the budget), then found by regula falsi on its logarithm (Illinois), to
    `WINDOW_PRECISION`, in at most `MAX_WINDOW_STEPS` covers.
    """

    def spend(window: float) -> tuple[float, Cover]:
        cover = cheapest_within(changes, window, allowance, max_gap=max_gap)
        if not cover.feasible:
            return math.inf, cover
        return (cover.mixed_requests if mixed else cover.pure.requests), cover

    horizon = max(changes.horizon, min_window)
    guess = min(max(_alive_time(changes, horizon) / max(budget, 1e-9), min_window), horizon)
    steps = 0
    high = min(guess * 2.0, horizon)
    high_spend, best = spend(high)
    while high_spend > budget:  # even this window is too dear: widen
        if high >= horizon or steps >= MAX_WINDOW_STEPS:
            return None
        high = min(high * 2.0, horizon)
        high_spend, best = spend(high)
        steps += 1
    low = max(guess / 4.0, min_window)
    low_spend, cover = spend(low)
    while low_spend <= budget:  # already affordable: narrow
        high, high_spend, best = low, low_spend, cover
        if low <= min_window or steps >= MAX_WINDOW_STEPS:
            return best
        low = max(low / 2.0, min_window)
        low_spend, cover = spend(low)
        steps += 1
    # spend(low) > budget >= spend(high): regula falsi on log(window), Illinois variant.
    side = 0
    while high / low > 1.0 + WINDOW_PRECISION and steps < MAX_WINDOW_STEPS:
        steps += 1
        if math.isfinite(low_spend) and low_spend > high_spend:
            share = (low_spend - budget) / (low_spend - high_spend)
            share = min(max(share, 0.05), 0.95)
        else:
            share = 0.5
        middle = math.exp(math.log(low) + share * (math.log(high) - math.log(low)))
        middle_spend, cover = spend(middle)
        if middle_spend <= budget:
            high, high_spend, best = middle, middle_spend, cover
            if side == 1:
                low_spend = budget + (low_spend - budget) / 2.0
            side = 1
        else:
            low, low_spend = middle, middle_spend
            if side == -1:
                high_spend = budget - (budget - high_spend) / 2.0
            side = -1
    return best


def _alive_time(changes: ChangeTimes, horizon: float, points: int = 2000) -> float:
    """∫ P(C > t) dt over [0, horizon]: what polling the whole status densely costs."""
    step = horizon / points
    total = 0.0
    for index in range(points):
        total += 1.0 - _clamp(changes.cdf((index + 0.5) * step))
    return total * step


def late_share(changes: ChangeTimes, polls: Sequence[float], window: float) -> float:
    """P(the change waits longer than `window`) under these poll times (after the last: late)."""
    late, previous = 0.0, 0.0
    for at in polls:
        if at - window > previous:
            late += max(0.0, _clamp(changes.cdf(at - window)) - _clamp(changes.cdf(previous)))
        previous = at
    return late + 1.0 - _clamp(changes.cdf(previous))


def expected_requests(changes: ChangeTimes, polls: Sequence[float]) -> float:
    """Expected polls made: each poll is made if the change was not seen at the one before."""
    total, previous = 0.0, 0.0
    for at in polls:
        total += 1.0 - _clamp(changes.cdf(previous))
        previous = at
    return total


# -- the dynamic programme -----------------------------------------------------------------


@dataclass(frozen=True)
class _Solved:
    """The DP's answer from every grid point: the next poll, and that path's cost and late."""

    grid: _Grid
    price: float
    choice: list[int]
    requests: list[float]
    late: list[float]


def _solve(grid: _Grid, price: float) -> _Solved:
    size, within, cap = grid.size, grid.within, grid.cap
    cdf, shifted = grid.cdf, grid.shifted
    value = [0.0] * (size + 1)
    choice = [size] * (size + 1)
    requests = [0.0] * (size + 1)
    late = [0.0] * (size + 1)
    penalised = [0.0] * (size + 1)  # price * F(t_j - W) + value_j
    near: deque[int] = deque()  # next polls within the window: min of value at the right
    far: deque[int] = deque()  # next polls past it: min of `penalised` at the right
    for i in range(size - 1, -1, -1):
        j = i + 1
        v = value[j]
        while near and value[near[0]] >= v:
            near.popleft()
        near.appendleft(j)
        reach = i + min(within, cap)
        while near and near[-1] > reach:
            near.pop()
        j = i + within + 1
        if j <= size and within + 1 <= cap:
            p = price * shifted[j] + value[j]
            penalised[j] = p
            while far and penalised[far[0]] >= p:
                far.popleft()
            far.appendleft(j)
        reach = i + cap
        while far and far[-1] > reach:
            far.pop()
        alive = 1.0 - cdf[i]
        if alive <= 0.0:
            continue  # nothing left to see: no more polls
        if within >= 1 and near:
            best, best_value = near[-1], value[near[-1]]
        else:
            best, best_value = -1, math.inf
        if far and penalised[far[-1]] - price * cdf[i] < best_value:
            best = far[-1]
            best_value = penalised[best] - price * cdf[i]
        value[i] = alive + best_value
        choice[i] = best
        requests[i] = alive + requests[best]
        late[i] = max(0.0, shifted[best] - cdf[i]) if best - i > within else 0.0
        late[i] += late[best]
    return _Solved(grid, price, choice, requests, late)


def _walk(solved: _Solved, first: int, window: float, max_gap: float) -> Placement:
    """The placement whose first poll is grid point `first`, optimal from there on."""
    grid = solved.grid
    polls: list[float] = []
    index = first
    polls.append(index * grid.step)
    while index < grid.size and grid.cdf[index] < 1.0:
        index = solved.choice[index]
        polls.append(index * grid.step)
    requests = 1.0 - grid.cdf[0] + solved.requests[first]
    late = solved.late[first]
    if first > grid.within:
        late += max(0.0, grid.shifted[first] - grid.cdf[0])
    return Placement(tuple(polls), window, requests, late, max_gap)


def _place(grid: _Grid, window: float, price: float, max_gap: float) -> Placement:
    solved = _solve(grid, price)
    return _walk(solved, solved.choice[0], window, max_gap)


def _objective(placement: Placement, price: float) -> float:
    return placement.requests + price * placement.late


def _cover(grid: _Grid, window: float, allowance: float, max_gap: float) -> Cover:
    cheap = _place(grid, window, 0.0, max_gap)
    if cheap.late <= allowance:
        return Cover(window, allowance, cheap, cheap, 1.0, cheap, True)
    tight = _place(grid, window, PROHIBITIVE_PRICE, max_gap)
    if tight.late > allowance + 1e-12:
        return Cover(window, allowance, tight, tight, 1.0, tight, False)
    lower, upper = cheap, tight
    prices: list[float] = []
    for _ in range(MAX_HULL_STEPS):
        gap = lower.late - upper.late
        if gap <= 1e-12:
            break
        price = (upper.requests - lower.requests) / gap
        prices.append(price)
        middle = _place(grid, window, price, max_gap)
        # No point below the segment: lower and upper are adjacent on the hull.
        if _objective(middle, price) >= _objective(lower, price) - 1e-9:
            break
        if middle.late > allowance:
            lower = middle
        else:
            upper = middle
    gap = lower.late - upper.late
    weight = 1.0 if gap <= 1e-12 else (lower.late - allowance) / gap
    pure = _cheapest_start(grid, window, allowance, max_gap, prices or [PROHIBITIVE_PRICE], upper)
    return Cover(window, allowance, lower, upper, min(max(weight, 0.0), 1.0), pure, True)


def _cheapest_start(
    grid: _Grid,
    window: float,
    allowance: float,
    max_gap: float,
    prices: Sequence[float],
    fallback: Placement,
) -> Placement:
    """The cheapest single placement within the allowance among those optimal after their
    first poll (at the hull's last prices): moving the first poll trades late changes for
    requests finely, where the hull's vertices can be far apart (a whole poll)."""
    best = fallback
    for price in sorted(set(prices[-2:])):
        solved = _solve(grid, price)
        for first in range(1, min(grid.cap, grid.size) + 1):
            late = solved.late[first]
            if first > grid.within:
                late += max(0.0, grid.shifted[first] - grid.cdf[0])
            if late > allowance:
                continue
            requests = 1.0 - grid.cdf[0] + solved.requests[first]
            if requests < best.requests - 1e-12:
                best = _walk(solved, first, window, max_gap)
    return best


def _clamp(value: float) -> float:
    return 0.0 if value <= 0.0 else 1.0 if value >= 1.0 else value


@dataclass(frozen=True)
class FunctionChanges:
    """`ChangeTimes` from a CDF function (tests, the simulator's distributions)."""

    function: Callable[[float], float]
    end: float

    @property
    def horizon(self) -> float:
        return self.end

    def cdf(self, seconds: float) -> float:
        return self.function(seconds)
