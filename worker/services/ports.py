"""What the services need from the outside world, as protocols (implemented in worker.adapters)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from worker.domain.decisions import Decision, StoredVerification


class VerificationStore(Protocol):
    """Where verifications live: `SqlStore` in production, `MemoryStore` in unit tests."""

    def load(self, ids: Sequence[int]) -> list[StoredVerification]:
        """The rows with these ids as they are now (missing ids left out)."""
        ...

    def apply(self, decisions: Sequence[Decision]) -> list[Decision]:
        """Write the decisions whose rows are still at their version, in one transaction."""
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
