"""What the services need from the outside world, as protocols (implemented in worker.adapters)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from worker.domain.decisions import Decision, StoredVerification
from worker.domain.outbox import OutboxEntry, Written
from worker.domain.safety_net import FoundTransition


class VerificationStore(Protocol):
    """Where verifications live: `SqlStore` in production, `MemoryStore` in unit tests."""

    def load(self, ids: Sequence[int]) -> list[StoredVerification]:
        """The rows with these ids as they are now (missing ids left out)."""
        ...

    def apply(self, decisions: Sequence[Decision]) -> Written:
        """Write the decisions whose rows are still at their version, in one transaction,
        and say which of their verifications had an earlier event still unpublished
        (checked in that transaction: `worker.domain.outbox`)."""
        ...

    def claim_due(
        self, provider: str, *, now: datetime, limit: int, lease_seconds: float
    ) -> list[int]:
        """Lease up to `limit` of a provider's due rows, oldest first; return their ids."""
        ...


class PollQueue(Protocol):
    """Where poll batches are sent (Celery's `kyc.polls` queue in production)."""

    def enqueue_polls(self, verification_ids: Sequence[int]) -> None:
        """Send one poll batch of these (already claimed) verifications; raise if refused."""
        ...


class SafetyNet(Protocol):
    """The adapting safety net (`worker.services.safety_net.HintedSafetyNet` in production)."""

    def stretches(self) -> dict[str, float]:
        """Each provider's stretch factor now (absent: 1); never raises for a store outage."""
        ...

    def record_transitions(self, found: Iterable[FoundTransition]) -> int:
        """Note these transitions found by polls, hinted or not (may raise RedisError)."""
        ...


class EventPublisher(Protocol):
    """Publishes events that just committed, without the ordered relay's turn
    (`OutboxRelay.publish_committed` in production)."""

    def publish_committed(self, entries: Sequence[OutboxEntry]) -> PublishOutcome:
        """Publish these (in their order) and mark them published; raise if the marking
        failed (what Redis took stays there: the ordered relay's retry is a no-op)."""
        ...


class PublishOutcome(Protocol):
    """How a publish went: events 1..published+already_published were handled (in Redis
    now), `pending_error` says why the next one was refused (None: all handled)."""

    @property
    def published(self) -> int: ...

    @property
    def already_published(self) -> int: ...

    @property
    def pending_error(self) -> str | None: ...
