"""Adaptive schedules: polls placed where changes land, learned from transition history.

For one provider and status, the history gives how long verifications stayed in it
(`DurationHistory`: seconds in status of those that left it, and of those still in it).
Those are the times of the polls that *saw* each change, not of the changes: a change seen
at a poll at t happened since the poll before it. `LearnedChanges` therefore estimates when
changes land in two steps: the survival curve of the seeing times (Kaplan-Meier: those still
in the status count as "at least this long"), then each of its steps spread evenly over the
gap of the schedule in force before that poll. GUESS: the history was polled with the plan
the learner last built (the static plan before its first build); the transition history
does not record the poll before a change, which would make this exact.

From those estimates `adaptive_plan` places every status's polls with the exact optimiser
of `worker.domain.placement`, per provider:

1. user statuses (pending, in_progress, retry): the fewest requests that still see
   `first_change_coverage` (95 %) of their changes within `first_change_window` (60 s);
2. reviews (in_review): the request budget left (the static plan's expected requests for
   the learned statuses, weighted by how many changes each saw, less what step 1 spends)
   buys the narrowest window that sees all but the review's share of the p95's allowance
   within it (with one user change and one decision per verification, 10 % of decisions:
   the p95 is over all of a provider's changes, and the user statuses' are seen in time);
3. no wait of a status is longer than its maximum gap (the plan's `max_gaps`): a decision
   the p95 forgives still waits at most that long;
4. past the longest observed duration, the static schedule's tail applies.

A (provider, status) with fewer than `min_samples` completed observations keeps its static
schedule and takes no part in the budget. Pure functions: the caller queries the history.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from worker.domain.placement import (
    ChangeTimes,
    Placement,
    cheapest_within,
    expected_requests,
    late_share,
    narrowest_within,
)
from worker.domain.schedule import (
    MIN_DELAY_SECONDS,
    Phase,
    SchedulePlan,
    StatusSchedule,
    first_wait_spread,
)
from worker.domain.statuses import VerificationStatus

REVIEW_STATUSES = frozenset({VerificationStatus.IN_REVIEW})
# Observations per equal-mass bin of a learned distribution, and the bounds on their count.
SAMPLES_PER_BIN = 200
SAMPLES_PER_EDGE_BIN = 50
EDGE_MASS = 0.2
MIN_BINS, MAX_BINS = 4, 200
# A user status's floor (see LearnedChanges): the static first wait less this many delay
# windows (1.5: 90 s for the default's 180 s and 60 s), GUESS: a little below what the
# static schedule itself assumes, for starts smoother than a sharp one.
FLOOR_WINDOWS = 1.5
# How a review's first gap is laid out (see LearnedChanges), GUESS: this share of its mass
# spread evenly over the gap, the rest at the density the second gap saw, against its end.
EVEN_SHARE = 0.0
# The least share of an allowance a learned schedule aims at, however thin its history.
MIN_ALLOWANCE_SHARE = 0.5
BUDGET_TOLERANCE = 0.002  # a learned review's spend within 0.2 % of its budget
REVIEW_CORRECTIONS = 4  # placements tried to fit the users' late share and the jitter
# Windows tried between the mixture's and the corrected one when the corrections overshoot.
FILL_STEPS = 16
# ... and how far past the mixture's window they reach when no correction fitted at all.
FILL_REACH = 1.25
# The most nominal offsets of a schedule walked to find the gap before an observation;
# past them the schedule's interval stands for the gap (a 1 s schedule over two weeks).
MAX_OFFSETS = 20_000


@dataclass(frozen=True)
class AdaptiveSettings:
    min_samples: int = 200  # completed observations needed, else the static schedule
    first_change_window: float = 60.0  # user statuses: see their change within this ...
    first_change_coverage: float = 0.95  # ... for this share of them
    coverage: float = 0.95  # the quantile of detection delay over all changes (the p95)
    max_review_miss: float = 0.2  # a review's allowance never exceeds this share
    min_interval: float = 10.0  # the densest polling a learned review schedule may use
    # Learned schedules aim under each allowance by this many standard errors of the late
    # share the history can tell (sqrt(allowance / observations)): the distribution is an
    # estimate, the optimiser skips where it happens to be thin, and a p95 sitting on its
    # allowance jumps into the late tail when a sample's late share comes out a little over.
    confidence: float = 2.0
    # ... and this share under the request budget. Small: the budget is the static plan's
    # spend estimated on the same history, so the estimate's bias is common to both (on the
    # simulator the static and learned estimates are both ~0.1 % under what they really
    # spend); 0.5 % left A ~0.6 requests unspent, and its p95 up to 9 % higher on some seeds.
    budget_safety: float = 0.001

    def __post_init__(self) -> None:
        if self.min_samples < 1:
            raise ValueError("min_samples must be at least 1")
        for name in ("first_change_coverage", "coverage"):
            if not 0.5 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be within [0.5, 1)")
        if not 1.0 - self.coverage <= self.max_review_miss < 1.0:
            raise ValueError("max_review_miss must be within [1 - coverage, 1)")
        if not (self.first_change_window > 0 and self.min_interval >= MIN_DELAY_SECONDS):
            raise ValueError("need first_change_window > 0 and min_interval >= 1 s")
        if not 0.0 <= self.budget_safety < 1.0:
            raise ValueError("budget_safety must be within [0, 1)")
        if not 0.0 <= self.confidence <= 10.0:
            raise ValueError("confidence must be within [0, 10] standard errors")

    def within(self, allowance: float, observations: int) -> float:
        """`allowance` less `confidence` standard errors of a late share that size."""
        error = math.sqrt(allowance / max(observations, 1))
        return max(allowance - self.confidence * error, allowance * MIN_ALLOWANCE_SHARE)


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

    @property
    def last_time(self) -> float:
        return self.times[-1] if self.times else 0.0

    def at(self, t: float) -> float:
        """P(duration > t)."""
        index = bisect.bisect_right(self.times, t)
        return 1.0 if index == 0 else self.values[index - 1]


class LearnedChanges:
    """When changes land in a status, estimated from the times of the polls that saw them.

    A piecewise-linear CDF: each Kaplan-Meier step of the seeing times, at t, is spread
    evenly over (t - gap, t], `gap` being the wait before the poll at t under `in_force`
    (the nominal poll nearest t: a first wait shortened by jitter shifts polls a little
    early or late), then smoothed over equal-mass bins. The first gap is the exception: a
    learned schedule skips the start of a status, where nothing tells where in the gap
    changes land, and spread evenly they would look as early as the status's start (polls
    placed for changes that never come, and a late share overstated). Two GUESSes:
    - given a `floor` (user statuses: a little below the earliest change the static schedule
      itself assumes, its first wait less 1.5 delay windows: 90 s by default), the gap's
      mass is spread evenly from the floor to the first poll. For a sharp start after the
      floor (the simulator's uniform users, from 120 s) or a smooth one (its log-normal
      users) the even spread sits above the true CDF, so the late share it implies is not
      understated, except for changes before the floor (log-normal users: 0.8 % before 90 s);
    - without (reviews), the density just before the first poll is what the second gap saw,
      so most of the gap's mass lies against its end at that density (exact for a sharp
      start), and EVEN_SHARE of it is spread over the whole gap (a smooth start's changes
      come earlier than that). A review's late share only moves its p95, within the cap.
    Mass the history leaves past its longest observation stays unplaced (cdf(horizon) < 1),
    and the static tail polls it.
    """

    def __init__(
        self,
        history: DurationHistory,
        in_force: StatusSchedule,
        max_gap: float,
        floor: float = 0.0,
    ) -> None:
        survival = Survival(history)
        self.horizon = survival.last_time
        gaps = _GapFinder(in_force, max_gap, self.horizon)
        spans: list[tuple[float, float, float]] = []  # (start, end, mass) of each step
        by_poll = [0.0, 0.0]  # the mass seen by the first and by the second poll
        previous = 1.0
        for time, value in zip(survival.times, survival.values, strict=True):
            mass = previous - value
            previous = value
            if mass <= 0:
                continue
            gap, index = gaps.locate(time)
            if index < 2:
                by_poll[index] += mass
            if index > 0:
                start = max(time - gap, 0.0)
                spans.append((min(start, max(time - MIN_DELAY_SECONDS, 0.0)), time, mass))
        first, second = gaps.first_two()
        level = by_poll[1] / second if second > 0 else 0.0
        spans += _first_gap(by_poll[0], first, level, floor)
        slopes: dict[float, float] = {}  # breakpoint -> change of density there
        for start, end, mass in spans:
            density = mass / max(end - start, 1e-9)
            slopes[start] = slopes.get(start, 0.0) + density
            slopes[end] = slopes.get(end, 0.0) - density
        knots = [0.0]
        values = [0.0]
        density = 0.0
        for point in sorted(slopes):
            if point > knots[-1]:
                values.append(values[-1] + density * (point - knots[-1]))
                knots.append(point)
            density += slopes[point]
        fine = [min(max(value, 0.0), 1.0) for value in values]
        self._knots, self._values = _smoothed(knots, fine, _levels(len(history.completed)))

    def cdf(self, seconds: float) -> float:
        if seconds <= 0:
            return 0.0
        index = bisect.bisect_right(self._knots, seconds)
        if index >= len(self._knots):
            return self._values[-1]
        low, high = self._knots[index - 1], self._knots[index]
        share = (seconds - low) / (high - low)
        return self._values[index - 1] + share * (self._values[index] - self._values[index - 1])


def _first_gap(
    mass: float, first: float, level: float, floor: float
) -> list[tuple[float, float, float]]:
    """The first gap's `mass` over (0, `first`], `level` the density just after it: spans of
    (start, end, mass) as the class docstring's GUESSes lay them out."""
    if mass <= 0 or first <= 0:
        return []
    if 0 < floor < first:
        return [(floor, first, mass)]
    if level <= 0 or mass >= level * first:  # denser than the next gap: spread evenly
        return [(0.0, first, mass)]
    even = EVEN_SHARE * mass
    return [(0.0, first, even), (first - (mass - even) / level, first, mass - even)]


def _levels(observations: int) -> list[float]:
    """Shares of the mass to smooth a learned CDF through: every SAMPLES_PER_BIN observations,
    and every SAMPLES_PER_EDGE_BIN in the first EDGE_MASS, where schedules skip (a status's
    start is sharp or smooth, and a coarse bin would blur it)."""
    coarse = 1.0 / min(max(observations // SAMPLES_PER_BIN, MIN_BINS), MAX_BINS)
    fine = 1.0 / min(max(observations // SAMPLES_PER_EDGE_BIN, MIN_BINS), MAX_BINS)
    levels: list[float] = []
    level = 0.0
    while level < 1.0 - 1e-9:
        level = min(level + (fine if level < EDGE_MASS - 1e-9 else coarse), 1.0)
        levels.append(level)
    return levels


def _smoothed(
    knots: list[float], values: list[float], levels: Sequence[float]
) -> tuple[list[float], list[float]]:
    """The CDF through its quantiles at `levels` of its mass (and its support's start).

    Each observation's mass spread over one gap leaves a lumpy density (a few changes per
    gap); the optimiser would skip the gaps that happened to see few and be late wherever
    they are not rare. Equal-mass bins of many observations keep the shape and drop the
    noise."""
    total = values[-1]
    if total <= 0:
        return knots, values
    start = knots[bisect.bisect_right(values, 0.0) - 1]
    smooth_knots, smooth_values = [0.0], [0.0]
    if start > 0:
        smooth_knots.append(start)
        smooth_values.append(0.0)
    for share_of_mass in levels:
        level = total * share_of_mass
        position = min(bisect.bisect_left(values, level), len(values) - 1)
        low, high = values[position - 1], values[position]
        share = 0.0 if high <= low else (level - low) / (high - low)
        at = knots[position - 1] + share * (knots[position] - knots[position - 1])
        if at > smooth_knots[-1]:
            smooth_knots.append(at)
            smooth_values.append(level)
        else:
            smooth_values[-1] = level
    return smooth_knots, smooth_values


class _GapFinder:
    """The wait before the nominal poll nearest a time, under one schedule and cap."""

    def __init__(self, schedule: StatusSchedule, max_gap: float, horizon: float) -> None:
        offsets: list[float] = []
        now = 0.0
        while now <= horizon and len(offsets) < MAX_OFFSETS:
            now += max(min(schedule.nominal_delay(now), max_gap), MIN_DELAY_SECONDS)
            offsets.append(now)
        self._offsets = offsets
        self._schedule = schedule
        self._max_gap = max_gap

    def first_two(self) -> tuple[float, float]:
        """The first nominal wait and the second (0 if there is no second poll)."""
        offsets = self._offsets
        first = offsets[0] if offsets else self._schedule.nominal_delay(0.0)
        return first, (offsets[1] - offsets[0] if len(offsets) > 1 else 0.0)

    def locate(self, time: float) -> tuple[float, int]:
        """The wait before the nominal poll nearest `time`, and that poll's index."""
        offsets = self._offsets
        index = bisect.bisect_left(offsets, time)
        if index >= len(offsets):
            gap = max(min(self._schedule.interval_at(time), self._max_gap), MIN_DELAY_SECONDS)
            return gap, index
        if index > 0 and time - offsets[index - 1] < offsets[index] - time:
            index -= 1
        return offsets[index] - (offsets[index - 1] if index > 0 else 0.0), index


def adaptive_plan(
    static: SchedulePlan,
    histories: Mapping[tuple[str, VerificationStatus], DurationHistory],
    settings: AdaptiveSettings | None = None,
    in_force: SchedulePlan | None = None,
    known: Mapping[tuple[str, VerificationStatus], ChangeTimes] | None = None,
) -> SchedulePlan:
    """`static` with learned overrides for every provider with enough history.

    `in_force`: the plan the history was polled with (the static one if not given).
    Terminal statuses in `histories` are ignored; a (provider, status) with too little
    history keeps the static schedule (its override, else the default). `known`: when
    changes land in a (provider, status), used instead of the history's estimate (the
    simulator's oracle runs: what knowing it is worth); the history still counts them.
    """
    known = known or {}
    settings = settings or AdaptiveSettings()
    in_force = in_force or static
    providers = sorted({provider for provider, _ in histories})
    plan = static
    for provider in providers:
        mine = {
            status: history
            for (name, status), history in histories.items()
            if name == provider and not status.is_terminal
        }
        given = {status: changes for (name, status), changes in known.items() if name == provider}
        learned = learn_provider(provider, static, in_force, mine, settings, given)
        if learned:
            plan = plan.with_overrides(provider, learned)
    return plan


def learn_provider(
    provider: str,
    static: SchedulePlan,
    in_force: SchedulePlan,
    histories: Mapping[VerificationStatus, DurationHistory],
    settings: AdaptiveSettings,
    known: Mapping[VerificationStatus, ChangeTimes] | None = None,
) -> dict[VerificationStatus, StatusSchedule]:
    """One provider's learned schedules (steps 1 to 4 of the module docstring); `known`
    as `adaptive_plan` takes it."""
    changes: dict[VerificationStatus, ChangeTimes] = {}
    counts: dict[VerificationStatus, int] = {}
    for status, history in sorted(histories.items()):
        current = in_force.schedule_for(provider, status)
        if current is None or len(history.completed) < settings.min_samples:
            continue
        floor = 0.0
        if status not in REVIEW_STATUSES:
            first = _static(static, provider, status).first_wait
            floor = first - FLOOR_WINDOWS * settings.first_change_window
        learned = (known or {}).get(status)
        if learned is None:
            learned = LearnedChanges(history, current, in_force.max_gap(status), max(floor, 0.0))
        if learned.horizon > 0:
            changes[status], counts[status] = learned, len(history.completed)
    result: dict[VerificationStatus, StatusSchedule] = {}
    users: dict[VerificationStatus, StatusSchedule] = {}
    saved = 0.0  # requests the user statuses' schedules save, summed over their changes
    for status, estimate in changes.items():
        if status in REVIEW_STATUSES:
            continue
        cover = cheapest_within(
            estimate,
            settings.first_change_window,
            settings.within(1.0 - settings.first_change_coverage, counts[status]),
            max_gap=static.max_gap(status),
        )
        if not cover.feasible:
            continue
        schedule = schedule_from(cover.pure, _static(static, provider, status))
        spent = jittered_requests(estimate, schedule, static.max_gap(status), static.jitter)
        saved += counts[status] * (_static_requests(static, provider, status, estimate) - spent)
        users[status] = result[status] = schedule
    for status in sorted(REVIEW_STATUSES & changes.keys()):
        review = _learn_review(provider, static, status, changes, counts, users, saved, settings)
        if review is not None:
            result[status] = review
    return result


def _learn_review(
    provider: str,
    static: SchedulePlan,
    status: VerificationStatus,
    changes: Mapping[VerificationStatus, ChangeTimes],
    counts: Mapping[VerificationStatus, int],
    users: Mapping[VerificationStatus, StatusSchedule],
    saved: float,
    settings: AdaptiveSettings,
) -> StatusSchedule | None:
    """The narrowest review window the budget buys, its allowance the p95's share.

    Two corrections, each found after a first placement: the user changes later than the
    window come out of the allowance, and what the one placement run really spends over
    the cover's mixture the window was searched with (the mixture's requests are continuous
    in the window, a single placement's jump; the first wait's jitter adds some) comes out
    of the budget. That second correction overshoots where one placement's spend jumps
    (a surcharge found at one window is too dear at the next), so the placement kept is
    then searched for between the corrected window and the mixture's (`_fill_budget`), or
    up to FILL_REACH past the mixture's if no corrected placement fitted."""
    estimate, seen = changes[status], counts[status]
    cap = static.max_gap(status)
    budget = _static_requests(static, provider, status, estimate) + saved / seen
    budget -= settings.budget_safety * budget
    pooled = seen + sum(counts[user] for user in users)
    base = (1.0 - settings.coverage) * pooled / seen
    late_users = 0.0  # user changes late at the review's window, per review change
    surcharge = 0.0  # what the placement run spends over the cover's mixture
    best: tuple[float, StatusSchedule] | None = None  # the last placement within budget
    narrowest = math.inf  # the mixture's window at the whole budget: no placement is narrower
    allowance = 0.0
    for _ in range(REVIEW_CORRECTIONS):
        allowance = min(max(base - late_users, 1.0 - settings.coverage), settings.max_review_miss)
        allowance = settings.within(allowance, seen)
        cover = narrowest_within(
            estimate,
            budget - surcharge,
            allowance,
            max_gap=cap,
            mixed=True,  # continuous in the window, where one placement's count jumps
            min_window=settings.min_interval,
        )
        if cover is None:
            break
        if surcharge == 0.0:
            narrowest = cover.window
        learned = schedule_from(cover.pure, _static(static, provider, status))
        late = _users_late(changes, counts, users, cover.window) / seen
        spent = jittered_requests(estimate, learned, cap, static.jitter)
        if spent <= budget * (1.0 + BUDGET_TOLERANCE):
            best = (cover.window, learned)
        if late <= late_users + 1e-4 and abs(spent - budget) <= BUDGET_TOLERANCE * budget:
            return learned
        late_users = max(late_users, late)
        # What the one placement run (with its first wait's jitter) spends over the mixture
        # the window was searched with.
        surcharge = spent - cover.mixed_requests
    widest = best[0] if best is not None else narrowest * FILL_REACH
    filled = _fill_budget(
        estimate, static, provider, status, budget, allowance, (narrowest, widest), settings
    )
    fallback = None if best is None else best[1]
    if filled is None:
        return fallback
    window, learned = filled
    late = _users_late(changes, counts, users, window) / seen
    if late > late_users + 1e-4:  # narrower than the users' late share was fitted for
        return fallback
    return learned


def _users_late(
    changes: Mapping[VerificationStatus, ChangeTimes],
    counts: Mapping[VerificationStatus, int],
    users: Mapping[VerificationStatus, StatusSchedule],
    window: float,
) -> float:
    """User changes later than `window` under their learned schedules (a count)."""
    return sum(
        counts[user] * late_share(changes[user], _offsets(schedule, changes[user]), window)
        for user, schedule in users.items()
    )


def _fill_budget(
    estimate: ChangeTimes,
    static: SchedulePlan,
    provider: str,
    status: VerificationStatus,
    budget: float,
    allowance: float,
    windows: tuple[float, float],
    settings: AdaptiveSettings,
) -> tuple[float, StatusSchedule] | None:
    """The narrowest window in (narrowest, widest] whose one placement (with the first
    wait's jitter) spends within `budget`, and that placement's schedule, in FILL_STEPS
    geometric steps from the narrowest up (None: none is). A single placement's spend is
    not monotonic in the window, so this scans rather than bisects; the steps bound the
    cost."""
    narrowest, widest = windows
    if not (math.isfinite(narrowest) and narrowest < widest):
        return None
    cap = static.max_gap(status)
    ratio = math.pow(widest / narrowest, 1.0 / FILL_STEPS)
    for step in range(1, FILL_STEPS + 1):
        window = max(narrowest * math.pow(ratio, step), settings.min_interval)
        cover = cheapest_within(estimate, window, allowance, max_gap=cap)
        if not cover.feasible:
            continue
        learned = schedule_from(cover.pure, _static(static, provider, status))
        if jittered_requests(estimate, learned, cap, static.jitter) <= budget * (
            1.0 + BUDGET_TOLERANCE
        ):
            return window, learned
    return None


def jittered_requests(
    changes: ChangeTimes, schedule: StatusSchedule, max_gap: float, jitter: float
) -> float:
    """Expected requests of `schedule` up to the horizon, over its first wait's jitter (as
    `next_poll_delay` draws it: the mean of a draw above and one below the nominal)."""
    total = 0.0
    spread = first_wait_spread(schedule.first_wait, jitter, max_gap)
    for shift in (-spread / 2.0, spread / 2.0):
        now = min(schedule.first_wait + shift, max_gap)
        polls = [now]
        while now < changes.horizon and len(polls) < MAX_OFFSETS:
            now += max(min(schedule.nominal_delay(now), max_gap), MIN_DELAY_SECONDS)
            polls.append(now)
        total += expected_requests(changes, polls)
    return total / 2.0


def _offsets(schedule: StatusSchedule, changes: ChangeTimes) -> list[float]:
    return schedule.offsets(changes.horizon)


def schedule_from(placement: Placement, static: StatusSchedule) -> StatusSchedule:
    """A `StatusSchedule` polling at the placement's times, then the static tail (capped)."""
    phases: list[Phase] = []
    previous = 0.0
    polls = list(placement.polls)
    if len(polls) >= 3 and polls[-1] - polls[-2] < polls[-2] - polls[-3]:
        polls.pop()  # a last short step onto the grid's end: the tail polls from there
    for at in polls:
        gap = max(at - previous, MIN_DELAY_SECONDS)
        if not phases or not math.isclose(phases[-1].interval, gap, rel_tol=1e-6):
            phases.append(Phase(previous, gap))
        previous = at
    end = previous
    cap = placement.max_gap
    tail = [Phase(end, min(static.interval_at(end), cap))]
    tail += [Phase(p.start, min(p.interval, cap)) for p in static.phases if p.start > end]
    for phase in tail:
        if phase.start == phases[-1].start:
            phases[-1] = phase
        elif not math.isclose(phases[-1].interval, phase.interval, rel_tol=1e-6):
            phases.append(phase)
    return StatusSchedule(tuple(phases))


def _static(plan: SchedulePlan, provider: str, status: VerificationStatus) -> StatusSchedule:
    schedule = plan.schedule_for(provider, status)
    assert schedule is not None, "only polled statuses are learned"
    return schedule


def _static_requests(
    plan: SchedulePlan, provider: str, status: VerificationStatus, changes: ChangeTimes
) -> float:
    """What the static schedule expects to spend in the status up to the horizon."""
    schedule = _static(plan, provider, status)
    return jittered_requests(changes, schedule, plan.max_gap(status), plan.jitter)
