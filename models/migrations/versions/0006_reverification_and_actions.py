"""re-verification times, the last sync, and the verification_actions table

verifications gains expires_at (an approval's re-verification time),
reverification_event_at (when its reverification_due event was written) and
last_sync_at (the last sync asked of the provider), all NULL on existing rows:
no existing approval is watched, and no verification has been synced. The index
on expires_at serves the re-verification watchlist; on a large PostgreSQL table,
build it CONCURRENTLY by hand before upgrading, with this name and definition:

    CREATE INDEX CONCURRENTLY ix_verifications_expires_at ON verifications (expires_at);

the upgrade then keeps it (IF NOT EXISTS). verification_actions records what was
asked of a provider besides status checks (gu1's sync) and how it went.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("verifications") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("reverification_event_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_verifications_expires_at", "verifications", ["expires_at"], if_not_exists=True
    )
    op.create_table(
        "verification_actions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("verification_id", BIG_ID, nullable=False),
        sa.Column("verification_version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=64), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("detail", sa.String(length=128), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["verification_id"],
            ["verifications.id"],
            name=op.f("fk_verification_actions_verification_id_verifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_actions")),
    )
    op.create_index(
        "ix_verification_actions_verification_id_occurred_at",
        "verification_actions",
        ["verification_id", "occurred_at"],
    )


def downgrade() -> None:
    op.drop_table("verification_actions")
    op.drop_index("ix_verifications_expires_at", table_name="verifications")
    with op.batch_alter_table("verifications") as batch:
        batch.drop_column("last_sync_at")
        batch.drop_column("reverification_event_at")
        batch.drop_column("expires_at")
