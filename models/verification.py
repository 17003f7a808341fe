"""The tracked verification, one row per (provider, external id)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import (
    Base,
    BigId,
    ErrorCodeColumn,
    JsonDocument,
    StatusColumn,
    UtcDateTime,
    utcnow,
)
from worker.domain.errors import ErrorCode
from worker.domain.statuses import VerificationStatus


class Verification(Base):
    """Current state of one verification at one provider.

    `version` guards every write (optimistic concurrency): a writer updates
    `WHERE version = <the version it read>`, so two workers polling the same
    verification at once cannot both record a transition.
    `next_poll_at` is NULL once the verification is terminal, except for an
    approval watched until its re-verification time (`expires_at` set,
    `reverification_event_at` NULL: see worker.domain.reverification); the
    scheduler's due query per provider reads only the (provider, next_poll_at) index.
    """

    __tablename__ = "verifications"
    __table_args__ = (
        UniqueConstraint("provider", "external_id"),
        Index("ix_verifications_provider_next_poll_at", "provider", "next_poll_at"),
        # Approvals by re-verification time (kyc-poller's watchlists), migration 0006.
        Index("ix_verifications_expires_at", "expires_at"),
        # Retention: rows that still keep a provider payload, oldest finished first.
        Index(
            "ix_verifications_response_kept",
            "finished_at",
            "id",
            postgresql_where=text("result ? 'response'"),
            sqlite_where=text("json_type(result, '$.response') IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))
    verification_type: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[VerificationStatus] = mapped_column(StatusColumn())
    provider_status: Mapped[str | None] = mapped_column(String(128))
    next_poll_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Polls since the status last changed: drives the quiet-session backoff.
    poll_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Consecutive failed polls: drives the error backoff.
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    # Consecutive permanent failures (auth, not found, malformed): bounded.
    permanent_error_count: Mapped[int] = mapped_column(Integer, default=0)
    total_polls: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_code: Mapped[ErrorCode | None] = mapped_column(ErrorCodeColumn())
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The provider's latest answer and the adapter's non-personal summary of it.
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_polled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # When the current status began (the schedule polls by time in status).
    status_since: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Where the maximum age counts from: tracking, or an operator's re-opening.
    polling_since: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # An approval's re-verification time (the provider's expiry, or when it said
    # re-verification is needed), and when its reverification_due event was written.
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    reverification_event_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The last sync asked of the provider (gu1), whatever came of it: bounds syncs per window.
    last_sync_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    def __repr__(self) -> str:
        return (
            f"<Verification {self.id} {self.provider}:{self.external_id} "
            f"{self.status} v{self.version}>"
        )
