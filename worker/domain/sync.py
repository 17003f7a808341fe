"""When to ask a provider to re-sync a verification that looks stuck (gu1's sync endpoint).

gu1 documents a sync ("trigger a manual sync if you suspect the status is out of
sync with the identity provider"; "manually trigger a sync if webhook delivery
failed"). kyc-poller asks for one before polling a verification that has stayed in
a non-terminal status longer than the status's age in `SyncPolicy.after_seconds`,
at most once per verification per `window_seconds` (its `last_sync_at`), and the
poll that follows reads the result. The fleet-wide cap (`max_per_minute`) and the
provider's rate limit are the governor's (`ProviderGovernor.admit_sync`).

GUESS (the docs give no figures): the default ages. A customer who has started
(`in_progress`) usually finishes within minutes, so an hour means the identity
provider's news has probably not reached gu1; `pending` and `in_review` can
legitimately last days, so a sync a day costs little and catches a lost webhook.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from worker.domain.actions import ACCEPTED
from worker.domain.statuses import VerificationStatus

DEFAULT_SYNC_AFTER: Mapping[VerificationStatus, float] = {
    VerificationStatus.PENDING: 86400.0,
    VerificationStatus.IN_PROGRESS: 3600.0,
    VerificationStatus.IN_REVIEW: 86400.0,
}


@dataclass(frozen=True)
class SyncPolicy:
    """Per status, how long in it before a sync; a window per verification; a fleet-wide cap."""

    after_seconds: Mapping[VerificationStatus, float] = field(
        default_factory=lambda: dict(DEFAULT_SYNC_AFTER)
    )
    window_seconds: float = 86400.0
    # Fleet-wide syncs per minute per provider (0: never sync).
    max_per_minute: int = 60

    def __post_init__(self) -> None:
        for status, seconds in self.after_seconds.items():
            if status.is_terminal:
                raise ValueError(f"a terminal status ({status}) is never synced")
            if not seconds > 0:
                raise ValueError("a sync age must be greater than 0")
        if not self.window_seconds > 0:
            raise ValueError("the sync window must be greater than 0")
        if self.max_per_minute < 0:
            raise ValueError("the sync cap must not be negative")

    @property
    def enabled(self) -> bool:
        return self.max_per_minute > 0 and bool(self.after_seconds)


class SyncState(Protocol):
    """What the rule reads of a stored verification (`StoredVerification` has it)."""

    @property
    def status(self) -> VerificationStatus: ...

    @property
    def in_status_since(self) -> datetime: ...

    @property
    def last_sync_at(self) -> datetime | None: ...


def sync_due(stored: SyncState, now: datetime, policy: SyncPolicy) -> bool:
    """Whether to ask for a sync before polling `stored` now (see the module docstring)."""
    if not policy.enabled or stored.status.is_terminal:
        return False
    age = policy.after_seconds.get(stored.status)
    if age is None or (now - stored.in_status_since).total_seconds() < age:
        return False
    last = stored.last_sync_at
    return last is None or (now - last).total_seconds() >= policy.window_seconds


@dataclass(frozen=True)
class SyncAttempt:
    """How one sync request went: accepted, or the ErrorCode value of its failure."""

    outcome: str
    http_status: int | None = None
    provider_status: str | None = None

    @classmethod
    def accepted(cls, http_status: int, provider_status: str | None = None) -> SyncAttempt:
        return cls(ACCEPTED, http_status, provider_status)
