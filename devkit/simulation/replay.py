"""Lifecycles polled through the real scheduling code, and what each policy achieved.

A policy starts a `Waits` per verification (`Policy.verification`: a mixture of schedules
picks one there) and answers, after every poll, how long to wait (`PollContext`: what the
worker knows at that poll). `simulate` polls each lifecycle as the worker would: the first
poll at tracking, then the policy's waits; it records every change's detection delay, the
requests, the longest gap between polls per status, and (optionally) the seconds in status
kyc-poller saw, as the transition history would. A feature that adds polls between waits
(e.g. provider webhooks as hints) would join here: `simulate` takes the earlier of the
policy's next poll and the next extra one, and `PollContext` can say what the policy knows
of them (so it may stretch its waits).

Detection delay: from the provider's change to the first poll at or after it. Requests:
every poll of a verification, from tracking to the poll that sees its terminal status.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from devkit.simulation.lifecycles import Lifecycle
from worker.domain.backoff import BackoffSettings, next_poll_time
from worker.domain.schedule import SchedulePlan, next_poll_delay
from worker.domain.statuses import VerificationStatus

PROVIDER = "gu1"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

History = dict[tuple[str, VerificationStatus], list[float]]


@dataclass(frozen=True, slots=True)
class PollContext:
    """What the worker knows right after a poll (that saw `status`)."""

    provider: str
    status: VerificationStatus
    seconds_in_status: float  # since the poll that saw `status` (tracking for the first)
    polls_in_status: int  # unchanged polls since then (0 right after a change)
    rng: random.Random


Waits = Callable[[PollContext], float]


class Policy(Protocol):
    def verification(self, rng: random.Random) -> Waits:
        """The waits for one verification (a mixture picks its schedule here)."""
        ...


@dataclass(frozen=True)
class Stateless:
    """A policy whose waits depend on the poll alone."""

    waits: Waits

    def verification(self, rng: random.Random) -> Waits:
        return self.waits


@dataclass
class Result:
    """Per policy and distribution: every change's delay, requests per verification, and the
    longest gap between two polls seen per status."""

    delays: list[float] = field(default_factory=list)
    first_change_delays: list[float] = field(default_factory=list)
    decision_delays: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    longest_gaps: dict[VerificationStatus, float] = field(default_factory=dict)

    def extend(self, other: Result) -> None:
        self.delays += other.delays
        self.first_change_delays += other.first_change_delays
        self.decision_delays += other.decision_delays
        self.requests += other.requests
        for status, gap in other.longest_gaps.items():
            self.longest_gaps[status] = max(self.longest_gaps.get(status, 0.0), gap)

    @property
    def mean_requests(self) -> float:
        return sum(self.requests) / len(self.requests)

    @property
    def mean_delay(self) -> float:
        return mean(self.delays)

    @property
    def p95(self) -> float:
        return percentile(self.delays, 0.95)

    @property
    def p99(self) -> float:
        return percentile(self.delays, 0.99)

    @property
    def first_change_p95(self) -> float:
        return percentile(self.first_change_delays, 0.95)

    def longest_gap(self, status: VerificationStatus) -> float:
        return self.longest_gaps.get(status, 0.0)


def simulate(
    lifecycles: Sequence[Lifecycle],
    policy: Policy,
    rng: random.Random,
    history: History | None = None,
) -> Result:
    """Poll each lifecycle as the worker would: the first poll at tracking, then `policy`.

    `history`, if given, receives the seconds in status kyc-poller saw (from the poll that
    saw a status to the poll that saw the next), as the transition history records them.
    """
    result = Result()
    gaps = result.longest_gaps
    for lifecycle in lifecycles:
        waits = policy.verification(rng)
        now = 0.0
        known = lifecycle[0][1]
        since = 0.0  # when kyc-poller saw `known` (tracking for the first status)
        polls = 0  # unchanged polls since then
        upcoming = 1  # index of the next change in `lifecycle`
        requests = 0
        while True:
            requests += 1
            actual = known
            while upcoming < len(lifecycle) and lifecycle[upcoming][0] <= now:
                changed_at, actual = lifecycle[upcoming]
                result.delays.append(now - changed_at)
                if upcoming == 1:
                    result.first_change_delays.append(now - changed_at)
                elif upcoming == len(lifecycle) - 1:
                    result.decision_delays.append(now - changed_at)
                upcoming += 1
            if actual != known:
                if history is not None:
                    history[(PROVIDER, known)].append(now - since)
                known, since, polls = actual, now, 0
                if known.is_terminal:
                    break
                wait = waits(PollContext(PROVIDER, known, 0.0, 0, rng))
            else:
                polls += 1
                wait = waits(PollContext(PROVIDER, known, now - since, polls, rng))
            if wait > gaps.get(known, 0.0):
                gaps[known] = wait
            now += wait
        result.requests.append(requests)
    return result


def new_history() -> History:
    return defaultdict(list)


def fixed_interval(lifecycles: Sequence[Lifecycle], interval: float) -> Result:
    """A poll every `interval` s from tracking, in closed form (no jitter)."""
    result = Result()
    for lifecycle in lifecycles:
        for index, (changed_at, _) in enumerate(lifecycle[1:]):
            delay = math.ceil(changed_at / interval) * interval - changed_at
            result.delays.append(delay)
            if index == 0:
                result.first_change_delays.append(delay)
            else:
                result.decision_delays.append(delay)
        result.requests.append(math.ceil(lifecycle[-1][0] / interval) + 1)
    for _, status in lifecycles[0][:-1] if lifecycles else ():
        result.longest_gaps[status] = interval
    return result


def fixed_requests(lifecycles: Sequence[Lifecycle], interval: float) -> float:
    total = sum(math.ceil(lifecycle[-1][0] / interval) + 1 for lifecycle in lifecycles)
    return total / len(lifecycles)


def interval_for_requests(lifecycles: Sequence[Lifecycle], requests: float) -> float:
    """The fixed interval spending `requests` per verification on these lifecycles."""
    low, high = 0.01, 10 * max(lifecycle[-1][0] for lifecycle in lifecycles)
    while high / low > 1.0001:  # requests fall as the interval grows
        middle = math.sqrt(low * high)
        if fixed_requests(lifecycles, middle) > requests:
            low = middle
        else:
            high = middle
    return math.sqrt(low * high)


def equal_requests_p95(lifecycles: Sequence[Lifecycle], requests: float) -> tuple[float, float]:
    """The fixed interval spending `requests` on these lifecycles, and its p95."""
    interval = interval_for_requests(lifecycles, requests)
    return interval, fixed_interval(lifecycles, interval).p95


def today_policy(settings: BackoffSettings) -> Policy:
    """The old default: full-jitter backoff, attempt = polls since the last change."""

    def waits(context: PollContext) -> float:
        due = next_poll_time(EPOCH, context.polls_in_status, settings, context.rng)
        return (due - EPOCH).total_seconds()

    return Stateless(waits)


def plan_policy(plan: SchedulePlan) -> Policy:
    """A schedule plan, exactly as `worker.domain.decisions` asks it after an answer."""

    def waits(context: PollContext) -> float:
        return next_poll_delay(
            plan, context.provider, context.status, context.seconds_in_status, context.rng
        )

    return Stateless(waits)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan
