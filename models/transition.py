"""History: one row for every status change a verification went through."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, EnumText, ErrorCodeColumn, StatusColumn, UtcDateTime, utcnow
from worker.domain.errors import ErrorCode, TransitionReason
from worker.domain.statuses import VerificationStatus


class Transition(Base):
    """A committed status change.

    (verification_id, version) is unique: the version a transition produced
    can be written once, so a duplicated poll cannot add a second history row
    even if the optimistic guard were bypassed.
    """

    __tablename__ = "verification_transitions"
    __table_args__ = (
        UniqueConstraint("verification_id", "version"),
        # The adaptive schedule reads the recent history, newest first (migration 0005).
        Index("ix_verification_transitions_occurred_at", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    verification_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("verifications.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    from_status: Mapped[VerificationStatus] = mapped_column(StatusColumn())
    to_status: Mapped[VerificationStatus] = mapped_column(StatusColumn())
    provider_status: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[TransitionReason] = mapped_column(EnumText(TransitionReason, 32))
    error_code: Mapped[ErrorCode | None] = mapped_column(ErrorCodeColumn())
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
