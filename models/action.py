"""Actions: what kyc-poller asked a provider to do besides checking a status (gu1's sync)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, UtcDateTime, utcnow


class VerificationAction(Base):
    """One action and its outcome, written with the poll it came with.

    Not a transition: no status changed and no event was published. `history`
    shows actions between the transitions, by time. `verification_version` is the
    row's version that write produced (the poll's), which orders it among them.
    """

    __tablename__ = "verification_actions"
    __table_args__ = (
        Index(
            "ix_verification_actions_verification_id_occurred_at", "verification_id", "occurred_at"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    verification_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("verifications.id", ondelete="CASCADE")
    )
    verification_version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    # "accepted", or the ErrorCode value of why it failed.
    outcome: Mapped[str] = mapped_column(String(64))
    http_status: Mapped[int | None] = mapped_column(Integer)
    # The provider's status word in its answer, cleaned and bounded.
    detail: Mapped[str | None] = mapped_column(String(128))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
