"""What one successful status check said, in the normalized vocabulary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from worker.domain.errors import ErrorCode
from worker.domain.statuses import VerificationStatus


@dataclass(frozen=True)
class ReverificationFacts:
    """What a provider says about an approval lasting: a flag, an expiry date, or both.

    `expires_at` is aware (UTC) when given. The rules read these only on an
    approval (`worker.domain.reverification`).
    """

    needs_reverification: bool = False
    expires_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("expires_at must be an aware datetime")


@dataclass(frozen=True)
class PollResult:
    """A provider's answer, as an adapter understood it."""

    status: VerificationStatus
    provider_status: str
    # The provider's whole answer (may hold personal data: stored in the
    # database only, never logged, never put into events).
    payload: dict[str, Any] = field(repr=False)
    # Adapter-extracted, non-personal details worth keeping next to the payload.
    summary: dict[str, Any] = field(default_factory=dict)
    # Machine-readable reason for decisions that came as an error (Bank131).
    error_code: ErrorCode | None = None
    # Another provider-side id this answer points at (Bank131 already_exists).
    related_external_id: str | None = None
    # Whether (and when) an approval must be verified again (gu1); None: the provider says nothing.
    reverification: ReverificationFacts | None = None

    def __post_init__(self) -> None:
        # The vocabularies are enforced where an answer is made, not where it is used.
        object.__setattr__(self, "status", VerificationStatus(self.status))
        if self.error_code is not None:
            object.__setattr__(self, "error_code", ErrorCode(self.error_code))
