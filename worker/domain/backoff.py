"""When to poll next: exponential backoff with full jitter, a floor and a cap.

Full jitter (a uniform draw between 0 and the exponential ceiling) spreads
polls of verifications that started together, so a batch does not hit a
provider in lock-step; the floor keeps a draw near zero from hammering it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class BackoffSettings:
    """Exponential backoff with full jitter, capped (seconds)."""

    base: float = 5.0
    cap: float = 900.0
    floor: float = 1.0


# 2**62 seconds is far beyond any cap; stop growing the exponent there.
_MAX_EXPONENT = 62


def backoff_ceiling(attempt: int, settings: BackoffSettings) -> float:
    """The largest delay (seconds) the `attempt`-th retry may draw: min(cap, base * 2**attempt)."""
    exponent = min(max(attempt, 0), _MAX_EXPONENT)
    return max(settings.floor, min(settings.cap, settings.base * 2.0**exponent))


def backoff_delay(attempt: int, settings: BackoffSettings, rng: random.Random) -> float:
    """A delay in [floor, ceiling] for the `attempt`-th poll since the last change (0-based)."""
    return max(settings.floor, rng.uniform(0.0, backoff_ceiling(attempt, settings)))


def next_poll_time(
    now: datetime,
    attempt: int,
    settings: BackoffSettings,
    rng: random.Random,
    *,
    at_least: float | None = None,
) -> datetime:
    """`now` plus a backoff delay; `at_least` (a provider's Retry-After) raises the delay.

    A Retry-After beyond the cap is clamped to the cap, so a hostile or broken
    header cannot park a verification for years.
    """
    delay = backoff_delay(attempt, settings, rng)
    if at_least is not None and at_least > delay:
        delay = min(at_least, max(settings.cap, settings.floor))
    return now + timedelta(seconds=delay)
