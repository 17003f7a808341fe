"""The SQL store: applies poll decisions and claims due rows (SQLAlchemy; SQLite and PostgreSQL).

`apply` writes a whole batch of decisions in ONE transaction; each row update is
guarded by the version its decision was made from (`WHERE version = :read`), and
only the decisions whose guard matched add their transition, outbox event and
follow-up, so a stale decision changes nothing. The dialect branches (SKIP LOCKED,
ON CONFLICT, UPDATE … RETURNING) live here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from models import OutboxEvent, Transition, Verification
from models.db import Database
from worker.domain.decisions import Decision, StoredVerification
from worker.domain.statuses import VerificationStatus


class SqlStore:
    """Verifications in the database (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reading -----------------------------------------------------------------------

    def load(self, ids: Sequence[int]) -> list[StoredVerification]:
        """The rows with these ids, as they are now (missing ids are left out)."""
        if not ids:
            return []
        with self.db.session() as session, session.begin():
            rows = session.execute(
                select(
                    Verification.id,
                    Verification.provider,
                    Verification.external_id,
                    Verification.verification_type,
                    Verification.status,
                    Verification.provider_status,
                    Verification.version,
                    Verification.created_at,
                    Verification.poll_attempts,
                    Verification.error_count,
                    Verification.permanent_error_count,
                    Verification.total_polls,
                ).where(Verification.id.in_(list(ids)))
            ).all()
        return [
            StoredVerification(
                id=row.id,
                provider=row.provider,
                external_id=row.external_id,
                verification_type=row.verification_type,
                status=VerificationStatus(row.status),
                provider_status=row.provider_status,
                version=row.version,
                created_at=row.created_at,
                poll_attempts=row.poll_attempts,
                error_count=row.error_count,
                permanent_error_count=row.permanent_error_count,
                total_polls=row.total_polls,
            )
            for row in rows
        ]

    # -- writing -----------------------------------------------------------------------

    def apply(self, decisions: Sequence[Decision]) -> list[Decision]:
        """Write every decision whose row is still at its version; return those applied."""
        if not decisions:
            return []
        applied: list[Decision] = []
        with self.db.session() as session, session.begin():
            for decision in decisions:
                if _guarded_update(session, decision):
                    applied.append(decision)
            transitions = [_transition_row(d) for d in applied if d.transition is not None]
            if transitions:
                session.execute(insert(Transition), transitions)
                session.execute(
                    insert(OutboxEvent),
                    [_outbox_row(d) for d in applied if d.event is not None],
                )
            for decision in applied:
                if decision.follow_up_external_id:
                    insert_verification_if_absent(
                        session,
                        provider=decision.stored.provider,
                        external_id=decision.follow_up_external_id,
                        verification_type=decision.stored.verification_type,
                        now=decision.update.updated_at,
                    )
        return applied

    # -- claiming ----------------------------------------------------------------------

    def claim_due(
        self, provider: str, *, now: datetime, limit: int, lease_seconds: float
    ) -> list[int]:
        """Ids of up to `limit` of `provider`'s due rows, oldest due first, leased until now+lease.

        PostgreSQL: one UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)
        RETURNING, so concurrent sweeps claim disjoint rows in one round trip.
        SQLite: SELECT then UPDATE in one BEGIN IMMEDIATE transaction.
        """
        if limit <= 0:
            return []
        leased_until = now + timedelta(seconds=lease_seconds)
        due = (
            select(Verification.id)
            .where(
                Verification.provider == provider,
                Verification.next_poll_at.is_not(None),
                Verification.next_poll_at <= now,
            )
            .order_by(Verification.next_poll_at)
            .limit(limit)
        )
        with self.db.session() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                claimed = session.scalars(
                    update(Verification)
                    .where(
                        Verification.id.in_(due.with_for_update(skip_locked=True).scalar_subquery())
                    )
                    .values(next_poll_at=leased_until)
                    .returning(Verification.id)
                )
                return list(claimed)
            ids = list(session.scalars(due))
            if ids:
                session.execute(
                    update(Verification)
                    .where(Verification.id.in_(ids))
                    .values(next_poll_at=leased_until)
                )
            return ids


def _guarded_update(session: Session, decision: Decision) -> bool:
    values: dict[str, Any] = {
        "version": decision.stored.version + 1,
        "status": decision.update.status,
        "provider_status": decision.update.provider_status,
        "poll_attempts": decision.update.poll_attempts,
        "error_count": decision.update.error_count,
        "permanent_error_count": decision.update.permanent_error_count,
        "total_polls": decision.update.total_polls,
        "last_error": decision.update.last_error,
        "last_error_code": decision.update.last_error_code,
        "next_poll_at": decision.update.next_poll_at,
        "finished_at": decision.update.finished_at,
        "updated_at": decision.update.updated_at,
    }
    if decision.update.last_polled_at is not None:
        values["last_polled_at"] = decision.update.last_polled_at
    if decision.update.result is not None:
        values["result"] = decision.update.result
    result = session.execute(
        update(Verification)
        .where(
            Verification.id == decision.stored.id,
            Verification.version == decision.stored.version,
        )
        .values(values)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _transition_row(decision: Decision) -> dict[str, Any]:
    record = decision.transition
    assert record is not None
    return {
        "verification_id": decision.stored.id,
        "version": record.version,
        "from_status": record.from_status,
        "to_status": record.to_status,
        "provider_status": record.provider_status,
        "reason": record.reason,
        "error_code": record.error_code,
        "occurred_at": record.occurred_at,
    }


def _outbox_row(decision: Decision) -> dict[str, Any]:
    event = decision.event
    assert event is not None
    return {
        "event_id": event["event_id"],
        "event_type": event["event_type"],
        "verification_id": decision.stored.id,
        "payload": event,
        "created_at": decision.update.updated_at,
        "publish_attempts": 0,
    }


def insert_verification_if_absent(
    session: Session,
    *,
    provider: str,
    external_id: str,
    verification_type: str | None,
    now: datetime,
) -> tuple[int, bool]:
    """Insert a new pending verification unless (provider, id) exists; return (id, created).

    INSERT … ON CONFLICT DO NOTHING: two apps tracking the same verification at
    the same moment still end up with one row.
    """
    dialect = session.get_bind().dialect.name
    insert_into = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert_into(Verification)
        .values(
            provider=provider,
            external_id=external_id,
            verification_type=verification_type,
            status=VerificationStatus.PENDING,
            next_poll_at=now,
            poll_attempts=0,
            error_count=0,
            permanent_error_count=0,
            total_polls=0,
            version=1,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["provider", "external_id"])
        .returning(Verification.id)
    )
    inserted = session.execute(statement).scalar_one_or_none()
    if inserted is not None:
        return inserted, True
    existing = session.execute(
        select(Verification.id).where(
            Verification.provider == provider, Verification.external_id == external_id
        )
    ).scalar_one()
    return existing, False
