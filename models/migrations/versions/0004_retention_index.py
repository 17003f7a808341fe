"""retention: a partial index over verifications that still keep a provider payload

The retention task removes `result.response` from long-terminal verifications in
batches; this index lets each batch read only rows that still have one, oldest
finished first, instead of scanning the table. On a large PostgreSQL table,
build it CONCURRENTLY by hand before upgrading, with this name and definition:

    CREATE INDEX CONCURRENTLY ix_verifications_response_kept
        ON verifications (finished_at, id) WHERE result ? 'response';

the upgrade then keeps it (IF NOT EXISTS).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_verifications_response_kept",
        "verifications",
        ["finished_at", "id"],
        postgresql_where=sa.text("result ? 'response'"),
        sqlite_where=sa.text("json_type(result, '$.response') IS NOT NULL"),
        if_not_exists=True,  # built by hand beforehand (see above): keep it
    )


def downgrade() -> None:
    op.drop_index("ix_verifications_response_kept", table_name="verifications")
