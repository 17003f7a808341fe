"""Adaptive schedules: poll where a change is likely, learned from transition history.

For one provider and status, the history gives how long verifications stayed in
it (`DurationHistory`: seconds in status of those that left it, and of those still
in it). From it `learn_schedule` builds a `StatusSchedule` that spends the same
expected number of requests as the static one, placed by the hazard rate (the
chance that a verification still in the status changes in the next second):

1. the survival curve S(t) (Kaplan-Meier: verifications still in the status count
   as "at least this long") is cut into bins of equal probability mass;
2. each bin's average hazard is its mass divided by its alive time ∫S(t)dt (what
   polling through the bin costs); bins are taken by rising hazard and left out
   while the mass left out stays within `1 - coverage` (5 % by default): the early
   stretch where nothing ever happens, a long thin tail;
3. the remaining bins are polled every `y` seconds, the left-out ones every
   `max_interval` (never landing past the start of a dense stretch); `y` is the
   smallest spacing whose expected requests, under S, do not exceed the static
   schedule's;
4. past the longest observed duration, the static schedule's tail applies.

For the p95 of detection delay at a fixed request budget this is the optimum
(poll densely exactly where the hazard is above a threshold, at one spacing).
With fewer than `min_samples` completed observations the static schedule is
returned unchanged. Pure functions: the caller queries the history.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from worker.domain.schedule import (
    MIN_DELAY_SECONDS,
    Phase,
    SchedulePlan,
    StatusSchedule,
)
from worker.domain.statuses import VerificationStatus


@dataclass(frozen=True)
class AdaptiveSettings:
    min_samples: int = 200  # completed observations needed, else the static schedule
    coverage: float = 0.95  # share of changes the dense stretches are placed to catch
    min_interval: float = 10.0  # the densest polling a learned schedule may use
    max_interval: float = 1800.0  # the sparsest: a learned gap is never longer
    bins: int = 40  # probability-mass bins the hazard is estimated over

    def __post_init__(self) -> None:
        if self.min_samples < 1:
            raise ValueError("min_samples must be at least 1")
        if not 0.5 <= self.coverage <= 1.0:
            raise ValueError("coverage must be within [0.5, 1]")
        if not 0 < self.min_interval <= self.max_interval:
            raise ValueError("need 0 < min_interval <= max_interval")
        if self.bins < 2:
            raise ValueError("bins must be at least 2")


@dataclass(frozen=True)
class DurationHistory:
    """Seconds in one status: `completed` left it, `still_open` are in it so far."""

    completed: Sequence[float]
    still_open: Sequence[float] = ()


class Survival:
    """S(t) = P(duration > t), a Kaplan-Meier step function."""

    def __init__(self, history: DurationHistory) -> None:
        completed = sorted(max(float(d), 0.0) for d in history.completed)
        still_open = sorted(max(float(d), 0.0) for d in history.still_open)
        times: list[float] = []
        values: list[float] = []
        survival = 1.0
        total = len(completed) + len(still_open)
        index = 0
        while index < len(completed):
            time = completed[index]
            events = 0
            while index < len(completed) and completed[index] == time:
                events += 1
                index += 1
            ended_before = index - events
            # At risk at `time`: all not yet ended, less those open for less than `time`.
            at_risk = total - ended_before - bisect.bisect_left(still_open, time)
            if at_risk > 0:
                survival *= 1.0 - events / at_risk
            times.append(time)
            values.append(max(survival, 0.0))
        self.times = times
        self.values = values
        self._negated = [-value for value in values]  # non-decreasing, for bisect

    @property
    def last_time(self) -> float:
        return self.times[-1] if self.times else 0.0

    def at(self, t: float) -> float:
        """P(duration > t)."""
        index = bisect.bisect_right(self.times, t)
        return 1.0 if index == 0 else self.values[index - 1]

    def quantile(self, p: float) -> float:
        """The smallest observed duration t with P(duration <= t) >= p."""
        index = bisect.bisect_left(self._negated, -(1.0 - p + 1e-12))
        return self.times[index] if index < len(self.times) else self.last_time

    def alive_time(self, start: float, end: float) -> float:
        """∫ S(t) dt over [start, end]: expected seconds spent in the status there."""
        if end <= start:
            return 0.0
        total = 0.0
        cursor = start
        index = bisect.bisect_right(self.times, start)
        while cursor < end:
            level = 1.0 if index == 0 else self.values[index - 1]
            step_end = self.times[index] if index < len(self.times) else math.inf
            segment_end = min(step_end, end)
            total += level * (segment_end - cursor)
            cursor = segment_end
            index += 1
        return total


def expected_polls(schedule: StatusSchedule, survival: Survival, horizon: float) -> float:
    """Expected polls in the status, up to the poll that covers `horizon`.

    A poll at t_k happens when the verification was still in the status at the
    previous poll t_(k-1) (t_0 = 0: the change, or tracking): sum of S(t_(k-1)).
    """
    total = 0.0
    previous = 0.0
    for time in schedule.offsets(horizon):
        total += survival.at(previous)
        previous = time
    return total


def learn_schedule(
    history: DurationHistory,
    static: StatusSchedule,
    settings: AdaptiveSettings | None = None,
) -> StatusSchedule:
    """A schedule placed by the hazard rate, at most `static`'s expected requests.

    `static` itself when the history holds fewer than `settings.min_samples`
    completed observations.
    """
    settings = settings or AdaptiveSettings()
    if len(history.completed) < settings.min_samples:
        return static
    survival = Survival(history)
    horizon = survival.last_time
    if horizon <= 0:
        return static
    covered = _covered_stretch(survival, settings)
    budget = expected_polls(static, survival, horizon)
    tail = _tail(static, horizon)

    def build(spacing: float) -> StatusSchedule:
        return _assemble(covered, spacing, settings.max_interval, tail)

    low, high = settings.min_interval, settings.max_interval
    if expected_polls(build(low), survival, horizon) <= budget:
        return build(low)
    best = build(high)
    if expected_polls(best, survival, horizon) > budget:
        return static  # even the sparsest learned schedule would cost more
    for _ in range(40):
        middle = math.sqrt(low * high)
        candidate = build(middle)
        if expected_polls(candidate, survival, horizon) <= budget:
            high, best = middle, candidate
        else:
            low = middle
        if high / low < 1.001:
            break
    return best


def adaptive_plan(
    static: SchedulePlan,
    histories: Mapping[tuple[str, VerificationStatus], DurationHistory],
    settings: AdaptiveSettings | None = None,
) -> SchedulePlan:
    """`static` with a learned override for every (provider, status) with enough history.

    Terminal statuses in `histories` are ignored; a (provider, status) with too
    little history keeps the static schedule (its override, else the default).
    """
    plan = static
    for (provider, status), history in sorted(histories.items()):
        current = static.schedule_for(provider, status)
        if current is None:
            continue
        learned = learn_schedule(history, current, settings)
        if learned is not current:
            plan = plan.with_overrides(provider, {status: learned})
    return plan


def _covered_stretch(survival: Survival, settings: AdaptiveSettings) -> tuple[float, float]:
    """The [start, end) stretch to poll densely: all bins but the lowest-hazard ends.

    Bins of equal probability mass; leaving some out of the dense stretch saves their
    alive time (what polling through them costs) and lets their mass wait longer. The
    hazard (mass per alive second) is lowest where a change is rare yet everyone is
    still waiting: before changes begin, and in a long thin tail. So the dense stretch
    is one interval, and the bins left out are a prefix and a suffix, chosen to save
    the most alive time with their mass within `1 - coverage`.
    """
    edges = [0.0, survival.quantile(0.0)]
    edges += [survival.quantile(j / settings.bins) for j in range(1, settings.bins)]
    edges.append(survival.last_time)
    edges = sorted(set(edges))
    masses = [survival.at(a) - survival.at(b) for a, b in pairwise(edges)]
    alive = [survival.alive_time(a, b) for a, b in pairwise(edges)]
    count = len(masses)
    allowance = 1.0 - settings.coverage + 1e-9
    best = (0.0, 0, count)  # alive time saved, first covered bin, end of covered bins
    prefix_mass = prefix_alive = 0.0
    for first in range(count):
        if prefix_mass > allowance:
            break
        suffix_mass = suffix_alive = 0.0
        end = count
        while end > first + 1 and prefix_mass + suffix_mass + masses[end - 1] <= allowance:
            end -= 1
            suffix_mass += masses[end]
            suffix_alive += alive[end]
        if prefix_alive + suffix_alive > best[0]:
            best = (prefix_alive + suffix_alive, first, end)
        prefix_mass += masses[first]
        prefix_alive += alive[first]
    _, first, end = best
    return edges[first], edges[end]


def _tail(static: StatusSchedule, horizon: float) -> list[Phase]:
    """The static schedule from `horizon` on."""
    phases = [Phase(horizon, static.interval_at(horizon))]
    phases += [phase for phase in static.phases if phase.start > horizon]
    return phases


def _assemble(
    covered: tuple[float, float],
    spacing: float,
    max_interval: float,
    tail: list[Phase],
) -> StatusSchedule:
    """Sparse (`max_interval`) before and after the covered stretch, dense in it."""
    spacing = max(spacing, MIN_DELAY_SECONDS)
    start, end = covered
    horizon = tail[0].start
    phases = [Phase(0.0, max_interval), Phase(start, spacing), Phase(end, max_interval)]
    merged: list[Phase] = []
    for phase in [p for p in phases if p.start < horizon] + tail:
        if merged and merged[-1].start == phase.start:
            merged[-1] = phase
        elif not merged or merged[-1].interval != phase.interval:
            merged.append(phase)
    return StatusSchedule(tuple(merged))
