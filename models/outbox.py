"""Transactional outbox: events written with the change, published after commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, JsonDocument, UtcDateTime, utcnow


class OutboxEvent(Base):
    """A domain event waiting to be (or already) published to Redis.

    Written in the same transaction as the transition it describes, so an
    event exists exactly when its transition committed. The relay publishes
    rows with `published_at IS NULL` in id order and then stamps them.
    """

    __tablename__ = "event_outbox"
    __table_args__ = (Index("ix_event_outbox_unpublished", "published_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    verification_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("verifications.id", ondelete="CASCADE"), index=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    publish_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
