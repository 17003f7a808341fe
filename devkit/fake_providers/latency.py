"""The fakes' network latency: how long every provider answer takes, on top of any scripted delay.

A base latency plus an optional jitter: each answer waits a time drawn uniformly
from [base - jitter, base + jitter] (never below zero), so the mean stays the
base. Set it when starting the fakes (`--latency-ms`, `FakeProviders(latency=...)`)
or at run time through the admin API (PUT /_fake/latency). Admin requests are
never delayed; a scripted step's `delay` (the "timeout" fault) adds to it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from devkit.fake_providers.steps import MAX_DELAY_SECONDS


@dataclass(frozen=True)
class Latency:
    """Seconds every provider answer waits: `base`, give or take up to `jitter`."""

    base: float = 0.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        for name, value in (("latency", self.base), ("jitter", self.jitter)):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 <= value <= MAX_DELAY_SECONDS
            ):
                raise ValueError(f"{name} must be a number of seconds (0-{MAX_DELAY_SECONDS:g})")

    @property
    def enabled(self) -> bool:
        return self.base > 0 or self.jitter > 0

    def sample(self, rng: random.Random) -> float:
        """One answer's wait, in seconds."""
        if not self.jitter:
            return self.base
        return max(0.0, self.base + rng.uniform(-self.jitter, self.jitter))

    def to_json(self) -> dict[str, float]:
        return {"latency_ms": self.base * 1000, "jitter_ms": self.jitter * 1000}

    @classmethod
    def from_ms(cls, latency_ms: float = 0.0, jitter_ms: float = 0.0) -> Latency:
        return cls(latency_ms / 1000, jitter_ms / 1000)

    @classmethod
    def from_json(cls, document: Any, current: Latency) -> Latency:
        """The admin API's {"latency_ms", "jitter_ms"?}; a missing key keeps its current value."""
        if not isinstance(document, dict):
            raise ValueError("the body must be a JSON object")
        unknown = set(document) - {"latency_ms", "jitter_ms"}
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
        values = {}
        for key, now in (("latency_ms", current.base), ("jitter_ms", current.jitter)):
            value = document.get(key, now * 1000)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 <= value <= MAX_DELAY_SECONDS * 1000
            ):
                raise ValueError(
                    f"{key} must be a number of milliseconds (0-{MAX_DELAY_SECONDS * 1000:g})"
                )
            values[key] = value / 1000
        return cls(values["latency_ms"], values["jitter_ms"])
