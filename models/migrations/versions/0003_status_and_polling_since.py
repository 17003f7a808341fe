"""status_since and polling_since on verifications

status_since: when the current status began (a status-aware schedule polls by
time in status). polling_since: where the maximum age counts from (tracking, or
an operator re-opening a failed verification). Existing rows: polling_since =
created_at; status_since = their last transition's time, else created_at.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("verifications") as batch:
        batch.add_column(sa.Column("status_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("polling_since", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        """
        UPDATE verifications SET
            polling_since = created_at,
            status_since = COALESCE(
                (SELECT MAX(t.occurred_at) FROM verification_transitions t
                 WHERE t.verification_id = verifications.id),
                created_at
            )
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("verifications") as batch:
        batch.drop_column("polling_since")
        batch.drop_column("status_since")
