"""What an operator watches for: unknown status words, and approvals due for re-verification.

Read-only queries for the CLI (`kyc-poller unknown-statuses`, `kyc-poller
reverifications`), bounded like every CLI query (`limit`, at most MAX_LIMIT).

- `unknown_statuses`: the words verifications are waiting on now (rows whose last
  poll answered a word the adapter's table lacks: `last_error_code` =
  `unknown_status`, the raw word in `provider_status`), per provider and word, with
  how many, when one was last polled, and a few example verifications. It reads
  every row's last error: a scan, fine for an operator's command (not for a
  dashboard refreshed every few seconds).
- `reverifications`: approvals whose reverification_due event was written
  (`due`, newest first), and watched approvals whose re-verification time falls
  within `within` (`expiring`, soonest first), through the expires_at index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select

from models import Verification
from models.db import Database
from worker.domain.errors import ErrorCode
from worker.domain.statuses import VerificationStatus
from worker.services.admin import DEFAULT_LIST_LIMIT, MAX_LIMIT, iso

MAX_EXAMPLES = 10


@dataclass(frozen=True)
class Example:
    verification_id: int
    external_id: str

    def to_json(self) -> dict[str, Any]:
        return {"verification_id": self.verification_id, "external_id": self.external_id}


@dataclass(frozen=True)
class UnknownStatusWord:
    """One word a provider sent that its table lacks, and the verifications waiting on it."""

    provider: str
    provider_status: str | None
    verifications: int
    last_polled_at: datetime | None
    examples: list[Example] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "provider_status": self.provider_status,
            "verifications": self.verifications,
            "last_polled_at": iso(self.last_polled_at),
            "examples": [example.to_json() for example in self.examples],
        }


def unknown_statuses(
    db: Database,
    *,
    provider: str | None = None,
    limit: int = DEFAULT_LIST_LIMIT,
    examples: int = 3,
) -> list[UnknownStatusWord]:
    """The unknown words verifications wait on, most verifications first (see the module doc)."""
    where: list[ColumnElement[bool]] = [
        Verification.last_error_code == ErrorCode.UNKNOWN_STATUS.value
    ]
    if provider is not None:
        where.append(Verification.provider == provider)
    count = func.count()
    grouped = (
        select(
            Verification.provider,
            Verification.provider_status,
            count,
            func.max(Verification.last_polled_at),
        )
        .where(*where)
        .group_by(Verification.provider, Verification.provider_status)
        .order_by(count.desc(), Verification.provider, Verification.provider_status)
        .limit(max(1, min(limit, MAX_LIMIT)))
    )
    shown = max(0, min(examples, MAX_EXAMPLES))
    words: list[UnknownStatusWord] = []
    with db.session() as session:
        for name, word, n, last_polled in session.execute(grouped).all():
            same_word = (
                Verification.provider_status.is_(None)
                if word is None
                else Verification.provider_status == word
            )
            picked = (
                session.execute(
                    select(Verification.id, Verification.external_id)
                    .where(*where, Verification.provider == name, same_word)
                    .order_by(Verification.id)
                    .limit(shown)
                ).all()
                if shown
                else []
            )
            words.append(
                UnknownStatusWord(
                    provider=name,
                    provider_status=word,
                    verifications=int(n),
                    last_polled_at=last_polled,
                    examples=[Example(vid, external_id) for vid, external_id in picked],
                )
            )
    return words


@dataclass(frozen=True)
class ReverificationEntry:
    verification_id: int
    provider: str
    external_id: str
    status: str
    # The re-verification time (the provider's expiry, or when it said one is needed).
    expires_at: datetime | None
    # When the reverification_due event was written (None: not yet due).
    event_at: datetime | None

    @property
    def due(self) -> bool:
        return self.event_at is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "verification_id": self.verification_id,
            "provider": self.provider,
            "external_id": self.external_id,
            "status": self.status,
            "expires_at": iso(self.expires_at),
            "due": self.due,
            "event_at": iso(self.event_at),
        }


@dataclass(frozen=True)
class Reverifications:
    due: list[ReverificationEntry]
    expiring: list[ReverificationEntry]
    due_total: int
    expiring_total: int

    def to_json(self) -> dict[str, Any]:
        return {
            "due": [entry.to_json() for entry in self.due],
            "expiring": [entry.to_json() for entry in self.expiring],
            "due_total": self.due_total,
            "expiring_total": self.expiring_total,
        }


def reverifications(
    db: Database,
    *,
    now: datetime,
    within: timedelta = timedelta(days=30),
    provider: str | None = None,
    limit: int = DEFAULT_LIST_LIMIT,
) -> Reverifications:
    """Approvals due for re-verification, and those whose time comes within `within`."""
    bounded = max(1, min(limit, MAX_LIMIT))
    scope: list[ColumnElement[bool]] = [Verification.expires_at.is_not(None)]
    if provider is not None:
        scope.append(Verification.provider == provider)
    due = and_(*scope, Verification.reverification_event_at.is_not(None))
    expiring = and_(
        *scope,
        Verification.reverification_event_at.is_(None),
        Verification.status == VerificationStatus.APPROVED.value,
        Verification.expires_at <= now + within,
    )
    with db.session() as session:
        due_rows = session.scalars(
            select(Verification)
            .where(due)
            .order_by(Verification.reverification_event_at.desc(), Verification.id)
            .limit(bounded)
        ).all()
        expiring_rows = session.scalars(
            select(Verification)
            .where(expiring)
            .order_by(Verification.expires_at, Verification.id)
            .limit(bounded)
        ).all()
        due_total = session.scalar(select(func.count()).select_from(Verification).where(due))
        expiring_total = session.scalar(
            select(func.count()).select_from(Verification).where(expiring)
        )
        return Reverifications(
            due=[_entry(row) for row in due_rows],
            expiring=[_entry(row) for row in expiring_rows],
            due_total=int(due_total or 0),
            expiring_total=int(expiring_total or 0),
        )


def _entry(row: Verification) -> ReverificationEntry:
    return ReverificationEntry(
        verification_id=row.id,
        provider=row.provider,
        external_id=row.external_id,
        status=str(row.status),
        expires_at=row.expires_at,
        event_at=row.reverification_event_at,
    )
