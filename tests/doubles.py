"""Test doubles shared by unit and integration tests: scripted adapters, clocks, runners."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from worker.adapters.contract import ProviderRequest, ProviderResponse
from worker.domain.errors import ProviderError
from worker.domain.results import PollResult
from worker.domain.statuses import VerificationStatus
from worker.domain.sync import SyncAttempt


class ScriptedAdapter:
    """Answers from a script: each call takes the next step; the last one repeats.

    A step may be a PollResult, a ProviderError (raised) or any other exception (raised,
    to play an adapter bug).
    """

    default_verification_type = None

    def __init__(
        self,
        name: str,
        steps: Sequence[PollResult | BaseException],
        *,
        syncs: Sequence[SyncAttempt | BaseException] | None = None,
    ) -> None:
        self.name = name
        self.steps = list(steps)
        # With `syncs` the adapter can sync: each sync takes the next one (the last repeats).
        self.supports_sync = syncs is not None
        self.sync_steps = list(syncs or [])
        self.sync_calls: list[str] = []
        # Every call in order: ("sync" | "status", external id).
        self.log: list[tuple[str, str]] = []
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.delay = 0.0
        self._lock = threading.Lock()

    async def request_sync(self, transport, external_id, verification_type) -> SyncAttempt | None:
        if not self.supports_sync:
            return None
        with self._lock:
            step = self.sync_steps[min(len(self.sync_calls), len(self.sync_steps) - 1)]
            self.sync_calls.append(external_id)
            self.log.append(("sync", external_id))
        if isinstance(step, BaseException):
            raise step
        return step

    async def fetch_status(self, transport, external_id, verification_type) -> PollResult:
        with self._lock:
            self.log.append(("status", external_id))
            step = self.steps[min(self.calls, len(self.steps) - 1)]
            self.calls += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if isinstance(step, BaseException):
                raise step
            return step
        finally:
            with self._lock:
                self.in_flight -= 1


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


class NoTransport:
    """For engines whose adapters never send (scripted): any request is a test bug."""

    async def send(self, provider: str, request: ProviderRequest) -> ProviderResponse:
        raise AssertionError(f"unexpected request to {provider}")


NO_TRANSPORT = NoTransport()


def run_coroutine(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """The engine's runner in tests: a fresh event loop per batch."""
    return asyncio.run(coroutine)


__all__ = [
    "NO_TRANSPORT",
    "FakeClock",
    "ProviderError",
    "ScriptedAdapter",
    "result",
    "run_coroutine",
]
