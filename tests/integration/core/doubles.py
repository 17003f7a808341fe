"""Test doubles for the Poller unit tests (HTTP adapters are tested against the fakes)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from models import VerificationStatus
from worker.adapters.base import PollResult, ProviderError


class ScriptedAdapter:
    """Answers from a script: each call takes the next step; the last one repeats."""

    default_verification_type = None

    def __init__(self, name: str, steps: Sequence[PollResult | ProviderError]) -> None:
        self.name = name
        self.steps = list(steps)
        self.calls = 0
        self._lock = threading.Lock()

    def validate_external_id(self, external_id, verification_type) -> None:
        return None

    def fetch_status(self, external_id, verification_type) -> PollResult:
        with self._lock:
            step = self.steps[min(self.calls, len(self.steps) - 1)]
            self.calls += 1
        if isinstance(step, ProviderError):
            raise step
        return step


def result(status: str, provider_status: str | None = None, **kwargs) -> PollResult:
    return PollResult(
        status=VerificationStatus(status),
        provider_status=provider_status or status.upper(),
        payload=kwargs.pop("payload", {"status": provider_status or status.upper()}),
        **kwargs,
    )


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
