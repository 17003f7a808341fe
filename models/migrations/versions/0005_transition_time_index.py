"""transitions: an index on occurred_at for the adaptive schedule's recent history

The adaptive schedule reads the transitions of its history window, newest first;
without this index that read scanned the whole table, which retention never
prunes. On a large PostgreSQL table, build it CONCURRENTLY by hand before
upgrading, with this name and definition:

    CREATE INDEX CONCURRENTLY ix_verification_transitions_occurred_at
        ON verification_transitions (occurred_at);

the upgrade then keeps it (IF NOT EXISTS).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_verification_transitions_occurred_at",
        "verification_transitions",
        ["occurred_at"],
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("ix_verification_transitions_occurred_at", table_name="verification_transitions")
