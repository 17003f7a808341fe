"""What the `kyc-poller` CLI reads: verifications, their history and the outbox.

Everything here is read-only. Queries are bounded (a `limit` on every list) and
return plain dataclasses with a `to_json()` for `--json`. Ids are taken in their
canonical form (`canonical_ref`), exactly as tracking stores them.

`doctor` lives in `worker.services.checks` (with the health check); durations are
parsed by `worker.domain.durations`, URLs redacted by `worker.domain.redaction`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from models import OutboxEvent, Transition, Verification
from models.db import Database
from worker.adapters.registry import adapter_class
from worker.domain import durations as _durations
from worker.domain import redaction as _redaction
from worker.domain.errors import (
    ErrorCode,
)
from worker.domain.statuses import TERMINAL_STATUSES, VerificationStatus

MAX_LIMIT = 1000
DEFAULT_LIST_LIMIT = 50


# --------------------------------------------------------------------------- helpers


def canonical_ref(provider: str, external_id: str) -> str:
    """The id as tracking stores it; RequestRejected (unknown provider, hostile id) if none."""
    return adapter_class(provider).canonical_id(external_id)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    try:
        url = make_url(database_url)
    except sa_exc.ArgumentError:
        return None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(str(url.database))


# --------------------------------------------------------------------------- verifications


@dataclass(frozen=True)
class VerificationView:
    verification_id: int
    provider: str
    external_id: str
    verification_type: str | None
    status: str
    provider_status: str | None
    version: int
    total_polls: int
    poll_attempts: int
    error_count: int
    permanent_error_count: int
    last_error_code: str | None
    last_error: str | None
    created_at: datetime | None
    updated_at: datetime | None
    status_since: datetime | None
    polling_since: datetime | None
    last_polled_at: datetime | None
    next_poll_at: datetime | None
    finished_at: datetime | None
    # Re-verification (gu1): when the approval expires, when its reverification_due event
    # was written; and when a stuck verification was last synced.
    expires_at: datetime | None = None
    reverification_event_at: datetime | None = None
    last_sync_at: datetime | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def watched(self) -> bool:
        """A decided verification still checked now and then (an approval that expires)."""
        return self.terminal and self.next_poll_at is not None

    @property
    def in_status_since(self) -> datetime | None:
        return self.status_since or self.created_at

    @classmethod
    def of(cls, row: Verification) -> VerificationView:
        return cls(
            verification_id=row.id,
            provider=row.provider,
            external_id=row.external_id,
            verification_type=row.verification_type,
            status=str(row.status),
            provider_status=row.provider_status,
            version=row.version,
            total_polls=row.total_polls,
            poll_attempts=row.poll_attempts,
            error_count=row.error_count,
            permanent_error_count=row.permanent_error_count,
            last_error_code=None if row.last_error_code is None else str(row.last_error_code),
            last_error=row.last_error,
            created_at=row.created_at,
            updated_at=row.updated_at,
            status_since=row.status_since,
            polling_since=row.polling_since,
            last_polled_at=row.last_polled_at,
            next_poll_at=row.next_poll_at,
            finished_at=row.finished_at,
            expires_at=row.expires_at,
            reverification_event_at=row.reverification_event_at,
            last_sync_at=row.last_sync_at,
        )

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            document[item.name] = iso(value) if isinstance(value, datetime) else value
        document["terminal"] = self.terminal
        document["watched"] = self.watched
        return document


def get_verification(db: Database, provider: str, external_id: str) -> VerificationView | None:
    """The verification tracked as (provider, id) — the id canonicalized — or None."""
    canonical = canonical_ref(provider, external_id)
    with db.session() as session:
        row = session.scalars(
            select(Verification).where(
                Verification.provider == provider, Verification.external_id == canonical
            )
        ).one_or_none()
        return None if row is None else VerificationView.of(row)


@dataclass(frozen=True)
class TransitionView:
    version: int
    from_status: str
    to_status: str
    provider_status: str | None
    reason: str
    error_code: str | None
    occurred_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "from_status": self.from_status,
            "to_status": self.to_status,
            "provider_status": self.provider_status,
            "reason": self.reason,
            "error_code": self.error_code,
            "occurred_at": iso(self.occurred_at),
        }


def get_history(db: Database, verification_id: int, limit: int = 100) -> list[TransitionView]:
    """The verification's latest `limit` transitions, oldest first."""
    with db.session() as session:
        rows = session.scalars(
            select(Transition)
            .where(Transition.verification_id == verification_id)
            .order_by(Transition.version.desc())
            .limit(max(1, min(limit, MAX_LIMIT)))
        ).all()
        return [
            TransitionView(
                version=row.version,
                from_status=str(row.from_status),
                to_status=str(row.to_status),
                provider_status=row.provider_status,
                reason=str(row.reason),
                error_code=None if row.error_code is None else str(row.error_code),
                occurred_at=row.occurred_at,
            )
            for row in reversed(rows)
        ]


@dataclass(frozen=True)
class ListFilter:
    """`kyc-poller list`: every given filter applies (AND)."""

    provider: str | None = None
    statuses: tuple[VerificationStatus, ...] = ()
    # In a non-terminal status for longer than this.
    stuck_longer_than: timedelta | None = None
    # `failed`, with this code on the row or on the transition that ended it.
    failed_with: ErrorCode | None = None
    # This last_error_code, whatever the status.
    error_code: ErrorCode | None = None
    limit: int = DEFAULT_LIST_LIMIT

    def conditions(self, now: datetime) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.provider is not None:
            where.append(Verification.provider == self.provider)
        if self.statuses:
            where.append(Verification.status.in_([str(s) for s in self.statuses]))
        if self.stuck_longer_than is not None:
            since = func.coalesce(Verification.status_since, Verification.created_at)
            where.append(Verification.status.not_in([str(s) for s in TERMINAL_STATUSES]))
            where.append(since <= now - self.stuck_longer_than)
        if self.failed_with is not None:
            code = str(self.failed_with)
            ending_code = (
                select(Transition.error_code)
                .where(Transition.verification_id == Verification.id)
                .order_by(Transition.version.desc())
                .limit(1)
                .scalar_subquery()
            )
            where.append(Verification.status == str(VerificationStatus.FAILED))
            where.append(or_(Verification.last_error_code == code, ending_code == code))
        if self.error_code is not None:
            where.append(Verification.last_error_code == str(self.error_code))
        return where


@dataclass(frozen=True)
class Listing:
    verifications: list[VerificationView]
    total: int  # how many match, the limit aside


def list_verifications(db: Database, filters: ListFilter, *, now: datetime) -> Listing:
    """Matching verifications, longest in their current status first, at most `limit`."""
    limit = max(1, min(filters.limit, MAX_LIMIT))
    where = and_(true(), *filters.conditions(now))
    since = func.coalesce(Verification.status_since, Verification.created_at)
    with db.session() as session:
        rows = session.scalars(
            select(Verification).where(where).order_by(since, Verification.id).limit(limit)
        ).all()
        total = session.scalar(select(func.count()).select_from(Verification).where(where)) or 0
        return Listing([VerificationView.of(row) for row in rows], int(total))


# --------------------------------------------------------------------------- outbox


@dataclass(frozen=True)
class OutboxEntry:
    outbox_id: int
    event_id: str
    verification_id: int
    provider: str | None
    to_status: str | None
    created_at: datetime | None
    publish_attempts: int
    last_error: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "outbox_id": self.outbox_id,
            "event_id": self.event_id,
            "verification_id": self.verification_id,
            "provider": self.provider,
            "to_status": self.to_status,
            "created_at": iso(self.created_at),
            "publish_attempts": self.publish_attempts,
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class OutboxBacklog:
    unpublished: int
    failing: int  # unpublished rows a publish attempt already failed for
    oldest_created_at: datetime | None
    oldest: list[OutboxEntry] = field(default_factory=list)

    def age_seconds(self, now: datetime) -> float | None:
        if self.oldest_created_at is None:
            return None
        return max((now - self.oldest_created_at).total_seconds(), 0.0)

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "unpublished": self.unpublished,
            "failing": self.failing,
            "oldest_created_at": iso(self.oldest_created_at),
            "oldest_age_seconds": self.age_seconds(now),
            "oldest": [entry.to_json() for entry in self.oldest],
        }


def outbox_backlog(db: Database, show: int = 10) -> OutboxBacklog:
    """The events waiting to be published: how many, since when, the oldest `show` of them."""
    pending = OutboxEvent.published_at.is_(None)
    with db.session() as session:
        count, failing, oldest_at = session.execute(
            select(
                func.count(),
                func.count(OutboxEvent.last_error),
                func.min(OutboxEvent.created_at),
            ).where(pending)
        ).one()
        entries: list[OutboxEntry] = []
        if show > 0 and count:
            for row in session.scalars(
                select(OutboxEvent)
                .where(pending)
                .order_by(OutboxEvent.id)
                .limit(min(show, MAX_LIMIT))
            ):
                payload = row.payload if isinstance(row.payload, dict) else {}
                entries.append(
                    OutboxEntry(
                        outbox_id=row.id,
                        event_id=row.event_id,
                        verification_id=row.verification_id,
                        provider=_text_or_none(payload.get("provider")),
                        to_status=_text_or_none(payload.get("to_status")),
                        created_at=row.created_at,
                        publish_attempts=row.publish_attempts,
                        last_error=row.last_error,
                    )
                )
    return OutboxBacklog(int(count or 0), int(failing or 0), _as_utc(oldest_at), entries)


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _as_utc(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, str):
        try:
            return _as_utc(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


# Moved (kept here for one release): their homes are the modules named.
parse_duration = _durations.parse_duration
redact_url = _redaction.redact_url
provider_host = _redaction.url_origin
Scrubber = _redaction.Scrubber
