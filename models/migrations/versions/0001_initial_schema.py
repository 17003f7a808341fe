"""initial schema: verifications, transition history, event outbox

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _timestamp(name: str, nullable: bool) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "verifications",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("verification_type", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("provider_status", sa.String(length=128), nullable=True),
        _timestamp("next_poll_at", nullable=True),
        sa.Column("poll_attempts", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("permanent_error_count", sa.Integer(), nullable=False),
        sa.Column("total_polls", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_code", sa.String(length=64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("result", JSON_DOCUMENT, nullable=True),
        _timestamp("created_at", nullable=False),
        _timestamp("updated_at", nullable=False),
        _timestamp("last_polled_at", nullable=True),
        _timestamp("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verifications")),
        sa.UniqueConstraint(
            "provider", "external_id", name=op.f("uq_verifications_provider_external_id")
        ),
    )
    op.create_index("ix_verifications_next_poll_at", "verifications", ["next_poll_at"])

    op.create_table(
        "event_outbox",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("verification_id", BIG_ID, nullable=False),
        sa.Column("payload", JSON_DOCUMENT, nullable=False),
        _timestamp("created_at", nullable=False),
        _timestamp("published_at", nullable=True),
        sa.Column("publish_attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["verification_id"],
            ["verifications.id"],
            name=op.f("fk_event_outbox_verification_id_verifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_event_outbox_event_id")),
    )
    op.create_index("ix_event_outbox_unpublished", "event_outbox", ["published_at", "id"])
    op.create_index(op.f("ix_event_outbox_verification_id"), "event_outbox", ["verification_id"])

    op.create_table(
        "verification_transitions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("verification_id", BIG_ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=False),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("provider_status", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        _timestamp("occurred_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["verification_id"],
            ["verifications.id"],
            name=op.f("fk_verification_transitions_verification_id_verifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_transitions")),
        sa.UniqueConstraint(
            "verification_id",
            "version",
            name=op.f("uq_verification_transitions_verification_id_version"),
        ),
    )
    op.create_index(
        op.f("ix_verification_transitions_verification_id"),
        "verification_transitions",
        ["verification_id"],
    )


def downgrade() -> None:
    op.drop_table("verification_transitions")
    op.drop_table("event_outbox")
    op.drop_table("verifications")
