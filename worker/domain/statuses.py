"""The one status vocabulary every provider is mapped onto.

Adapters translate each provider's own words into these; everything downstream
(scheduling, transitions, events) speaks only this model.
"""

from __future__ import annotations

from enum import StrEnum


class VerificationStatus(StrEnum):
    """Normalized verification status, shared by all providers."""

    PENDING = "pending"  # created at the provider, user has not started
    IN_PROGRESS = "in_progress"  # user is going through the flow / check is running
    IN_REVIEW = "in_review"  # submitted, waiting for a manual (compliance) review
    RETRY = "retry"  # user must resubmit (blurry photo, fixable issue)
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"  # the provider expired the session
    ABANDONED = "abandoned"  # user started and never finished
    CANCELLED = "cancelled"  # cancelled at the provider (or superseded by another check)
    FAILED = "failed"  # the provider cannot give a decision (not found, unusable answers)
    TIMED_OUT = "timed_out"  # kyc-poller gave up: tracked longer than the configured maximum age

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES: frozenset[VerificationStatus] = frozenset(
    {
        VerificationStatus.APPROVED,
        VerificationStatus.REJECTED,
        VerificationStatus.EXPIRED,
        VerificationStatus.ABANDONED,
        VerificationStatus.CANCELLED,
        VerificationStatus.FAILED,
        VerificationStatus.TIMED_OUT,
    }
)
