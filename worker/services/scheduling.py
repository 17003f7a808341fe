"""The sweep: which verifications are due, claimed per provider and cut into poll batches.

Claiming moves a row's `next_poll_at` forward by a lease. If the batch it was
handed to never runs (worker died, broker lost it), the lease runs out and the
row is due again: nothing is lost. Concurrent sweeps claim disjoint rows
(SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE on SQLite).

Each provider is claimed on its own, as much as its governor allows until the
next sweep: nothing while its circuit is open (its rows stay due, so they are
polled as soon as it closes), a few probes when it is half-open, its rate plus
its burst otherwise. The cost of a sweep follows the due rows, not the table
size: each claim reads the (provider, next_poll_at) index.

A row is due by its `next_poll_at` alone, whatever its status: an approval watched
until its re-verification time (worker.domain.reverification) keeps one and is
claimed like any other row; every other terminal row has none and is never claimed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from worker.services.governor import ProviderGovernor
from worker.services.ports import VerificationStore

# Rows claimed per round trip; batches are cut from them in memory.
CLAIM_CHUNK = 2_000


@dataclass(frozen=True)
class Sweep:
    """One provider's claimed ids, cut into poll batches."""

    provider: str
    batches: list[list[int]]

    @property
    def claimed(self) -> int:
        return sum(len(batch) for batch in self.batches)


class Sweeper:
    def __init__(
        self,
        store: VerificationStore,
        providers: Sequence[str],
        *,
        governor: ProviderGovernor | None,
        batch_size: int,
        max_claims: int,
        lease_seconds: float,
        interval_seconds: float,
    ) -> None:
        self.store = store
        self.providers = tuple(providers)
        self.governor = governor
        self.batch_size = max(batch_size, 1)
        self.max_claims = max_claims
        self.lease_seconds = lease_seconds
        self.interval_seconds = interval_seconds

    def sweep(self, now: datetime) -> list[Sweep]:
        """Claim up to `max_claims` due rows, shared fairly between providers.

        Each provider may take what its governor allows; within that, the sweep's
        budget is split evenly, and what a provider with fewer due rows leaves goes to
        the others in further rounds. (Claiming in a fixed order gave the whole budget
        to the first provider with a large backlog and no rate limit.)
        """
        allowance = {provider: self._allowance(provider) for provider in self.providers}
        claimed: dict[str, list[int]] = {provider: [] for provider in self.providers}
        active = [provider for provider in self.providers if allowance[provider] > 0]
        remaining = self.max_claims
        while remaining > 0 and active:
            share = max(remaining // len(active), 1)
            still_hungry = []
            for provider in active:
                want = min(share, allowance[provider] - len(claimed[provider]), remaining)
                if want <= 0:
                    continue
                ids = self._claim(provider, now, want)
                claimed[provider] += ids
                remaining -= len(ids)
                if len(ids) == want and len(claimed[provider]) < allowance[provider]:
                    still_hungry.append(provider)
            active = still_hungry
        return [Sweep(provider, self._batches(ids)) for provider, ids in claimed.items() if ids]

    def _allowance(self, provider: str) -> int:
        if self.governor is None:
            return self.max_claims
        return self.governor.claim_budget(provider, self.interval_seconds, self.max_claims)

    def _batches(self, ids: list[int]) -> list[list[int]]:
        return [
            ids[start : start + self.batch_size] for start in range(0, len(ids), self.batch_size)
        ]

    def _claim(self, provider: str, now: datetime, budget: int) -> list[int]:
        ids: list[int] = []
        while len(ids) < budget:
            want = min(CLAIM_CHUNK, budget - len(ids))
            chunk = self.store.claim_due(
                provider, now=now, limit=want, lease_seconds=self.lease_seconds
            )
            ids.extend(chunk)
            if len(chunk) < want:
                break
        return ids
