"""What the simulator replays: a verification tracked at 0 in `pending`, the user finishing the
flow (the first change, to `in_review`), then a review deciding it (`approved`).

Each phase's duration is drawn from a `Span`: uniform or log-uniform on [low, high], or a
`LogNormal` cut at its 0.05 % and 99.95 % quantiles (so that every distribution has a finite
support, which the bound and the optimum need). A `Distribution` names the two and the
longest gap it allows between polls of a review (the cap the optimum and the plans keep).
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from functools import cached_property
from statistics import NormalDist
from typing import Protocol

from worker.domain.durations import parse_duration
from worker.domain.statuses import VerificationStatus

# A lifecycle: (time since tracking, status from then on), the first at 0.
Lifecycle = tuple[tuple[float, VerificationStatus], ...]

LOG_NORMAL_CUT = 0.0005  # the share cut off each end of a log-normal
DEFAULT_REVIEW_GAP = 1800.0  # the product's default maximum gap for reviews


class Span(Protocol):
    """A phase's duration: a distribution on [low, high] with a density (hashable: the
    bound caches what it computes per span)."""

    def __hash__(self) -> int: ...

    @property
    def low(self) -> float: ...

    @property
    def high(self) -> float: ...

    def cdf(self, seconds: float) -> float: ...

    def density(self, seconds: float) -> float: ...

    def densest(self, start: float, end: float) -> float:
        """The largest density on [start, end] (the bound charges a cell at its densest)."""
        ...

    def draw(self, rng: random.Random) -> float: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Uniform:
    """Uniform on [low, high], or log-uniform (`log`)."""

    low: float
    high: float
    log: bool = False

    def draw(self, rng: random.Random) -> float:
        if self.log:
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)

    def cdf(self, seconds: float) -> float:
        if seconds >= self.high:
            return 1.0
        if seconds <= self.low:
            return 0.0
        if self.log:
            return math.log(seconds / self.low) / math.log(self.high / self.low)
        return (seconds - self.low) / (self.high - self.low)

    def density(self, seconds: float) -> float:
        """At the support's edges too (the bound charges a cell its densest point)."""
        if not self.low <= seconds <= self.high or self.high == self.low:
            return 0.0
        if self.log:
            return 1.0 / (seconds * math.log(self.high / self.low))
        return 1.0 / (self.high - self.low)

    def densest(self, start: float, end: float) -> float:
        # Monotone on its support: the densest point of a cell is one of its ends.
        return max(self.density(max(start, self.low)), self.density(min(end, self.high)))

    def describe(self) -> str:
        kind = "log-uniform" if self.log else "uniform"
        return f"{_duration(self.low)} to {_duration(self.high)} ({kind})"


@dataclass(frozen=True)
class LogNormal:
    """Log-normal with this median and sigma (of the log), cut to its central 99.9 %."""

    median: float
    sigma: float

    def __post_init__(self) -> None:
        if not (self.median > 0 and self.sigma > 0):
            raise ValueError("a log-normal needs median > 0 and sigma > 0")

    @cached_property
    def _normal(self) -> NormalDist:
        return NormalDist(math.log(self.median), self.sigma)

    @cached_property
    def low(self) -> float:
        return math.exp(self._normal.inv_cdf(LOG_NORMAL_CUT))

    @cached_property
    def high(self) -> float:
        return math.exp(self._normal.inv_cdf(1.0 - LOG_NORMAL_CUT))

    @property
    def mode(self) -> float:
        return self.median * math.exp(-(self.sigma**2))

    def draw(self, rng: random.Random) -> float:
        share = rng.uniform(LOG_NORMAL_CUT, 1.0 - LOG_NORMAL_CUT)
        return math.exp(self._normal.inv_cdf(share))

    def cdf(self, seconds: float) -> float:
        if seconds <= self.low:
            return 0.0
        if seconds >= self.high:
            return 1.0
        raw = self._normal.cdf(math.log(seconds))
        return (raw - LOG_NORMAL_CUT) / (1.0 - 2.0 * LOG_NORMAL_CUT)

    def density(self, seconds: float) -> float:
        if not self.low <= seconds <= self.high:
            return 0.0
        return self._normal.pdf(math.log(seconds)) / seconds / (1.0 - 2.0 * LOG_NORMAL_CUT)

    def densest(self, start: float, end: float) -> float:
        # Unimodal: the densest point of a cell is its end nearest the mode, or the mode.
        return self.density(min(max(self.mode, start, self.low), end, self.high))

    def describe(self) -> str:
        return f"log-normal, median {_duration(self.median)}, sigma {self.sigma:g}"


@dataclass(frozen=True)
class Distribution:
    name: str
    user: Span  # tracking -> the user finishes the flow (pending -> in_review)
    review: Span  # in_review -> a decision (approved)
    review_gap: float = DEFAULT_REVIEW_GAP  # the longest gap between polls of a review

    def describe(self) -> str:
        return (
            f"user completes the flow {self.user.describe()} after tracking, "
            f"then a review takes {self.review.describe()}"
        )


DEFAULT_DISTRIBUTIONS = (
    Distribution("A", Uniform(120.0, 1200.0), Uniform(3600.0, 86400.0)),
    # Reviews of at most an hour: a 30 min gap would be half of one, so 10 min.
    Distribution("B", Uniform(120.0, 1200.0), Uniform(300.0, 3600.0), review_gap=600.0),
    # Not uniform: users finish around 5 min, reviews around 2 h with a tail of days.
    Distribution("C", LogNormal(300.0, 0.5), LogNormal(7200.0, 1.2)),
)


def draw_lifecycles(distribution: Distribution, count: int, seed: int) -> list[Lifecycle]:
    rng = random.Random(seed)
    lifecycles: list[Lifecycle] = []
    for _ in range(count):
        submitted = distribution.user.draw(rng)
        decided = submitted + distribution.review.draw(rng)
        lifecycles.append(
            (
                (0.0, VerificationStatus.PENDING),
                (submitted, VerificationStatus.IN_REVIEW),
                (decided, VerificationStatus.APPROVED),
            )
        )
    return lifecycles


def parse_span(text: str) -> Span:
    """`2m-20m` (uniform), `5m~60m` (log-uniform) or `2h@1.2` (log-normal: median, sigma)."""
    if "@" in text:
        median, _, sigma = text.partition("@")
        try:
            return LogNormal(_seconds(median), float(sigma))
        except ValueError as exc:
            raise ValueError(f"not a log-normal: {text!r} ({exc})") from None
    for separator, log in (("~", True), ("-", False)):
        if separator in text:
            low_text, _, high_text = text.partition(separator)
            low, high = _seconds(low_text), _seconds(high_text)
            if not 0 < low <= high:
                raise ValueError(f"need 0 < low <= high in {text!r}")
            return Uniform(low, high, log)
    raise ValueError(f"not a range: {text!r} (e.g. 2m-20m, 5m~60m log-uniform, 2h@1.2 log-normal)")


def parse_lifecycle(text: str) -> Distribution:
    """NAME=USER/REVIEW[/GAP], e.g. `B=2m-20m/5m-60m/10m` (GAP: the review's longest gap)."""
    name, equals, spans = text.partition("=")
    parts = spans.split("/")
    if not equals or len(parts) not in (2, 3) or not name.strip():
        raise ValueError(f"expected NAME=USER/REVIEW[/GAP] such as B=2m-20m/5m-60m, got {text!r}")
    gap = _seconds(parts[2]) if len(parts) == 3 else DEFAULT_REVIEW_GAP
    return Distribution(name.strip(), parse_span(parts[0]), parse_span(parts[1]), gap)


def _seconds(text: str) -> float:
    """`90s`, `20m`, `1h30m`; a bare number is seconds."""
    stripped = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", stripped):
        seconds = float(stripped)
        if seconds <= 0:
            raise ValueError(f"not a positive duration: {text!r}")
        return seconds
    return parse_duration(stripped).total_seconds()


def _duration(seconds: float) -> str:
    for unit, size in (("h", 3600.0), ("min", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"
