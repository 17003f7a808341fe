"""Which verifications are due for a poll, claimed so no two schedulers take the same one.

Claiming moves a row's `next_poll_at` forward by a lease. If the poll task it
enqueued never runs (worker died, broker lost it), the lease runs out and the
row is due again: nothing is lost. On PostgreSQL the due rows are selected
FOR UPDATE SKIP LOCKED, so concurrent schedulers claim disjoint sets.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from models import Verification
from models.db import Database


def claim_due_verifications(
    db: Database, *, now: datetime, limit: int, lease_seconds: float
) -> list[int]:
    """Return ids of up to `limit` due verifications, oldest due first, leased until now+lease."""
    with db.session() as session, session.begin():
        query = (
            select(Verification.id)
            .where(Verification.next_poll_at.is_not(None), Verification.next_poll_at <= now)
            .order_by(Verification.next_poll_at)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = list(session.scalars(query))
        if ids:
            session.execute(
                update(Verification)
                .where(Verification.id.in_(ids))
                .values(next_poll_at=now + timedelta(seconds=lease_seconds))
            )
        return ids
