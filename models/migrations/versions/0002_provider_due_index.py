"""due rows per provider: index (provider, next_poll_at) replaces (next_poll_at)

The scheduler claims each provider's due rows on its own (rate limits and
circuit breakers are per provider), so the sweep reads this index and its cost
depends on the due rows, not on the table size.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_verifications_provider_next_poll_at", "verifications", ["provider", "next_poll_at"]
    )
    op.drop_index("ix_verifications_next_poll_at", table_name="verifications")


def downgrade() -> None:
    op.create_index("ix_verifications_next_poll_at", "verifications", ["next_poll_at"])
    op.drop_index("ix_verifications_provider_next_poll_at", table_name="verifications")
