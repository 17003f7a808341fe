"""Retention: what kyc-poller stops keeping, run periodically by beat (`kyc.apply_retention`).

- Outbox rows published longer than `outbox_max_age_seconds` ago are deleted (the
  events live on in the Redis Stream for its own retention; unpublished rows are never
  touched, however old).
- The provider's raw answer (`verifications.result["response"]`: names, birth dates,
  document numbers…) is removed from verifications that have been terminal longer
  than `payload_max_age_seconds` (`finished_at`). Status, history (transitions),
  errors and the adapter's non-personal `summary` stay.

Both work in batches of `batch_size` rows, each its own short transaction, so neither
holds a lock on the table for long; a short pause between batches lets queued writers
in (SQLite has one writer at a time). A run stops after `max_batches` batches per
kind, or once `time_budget_seconds` are spent; the next run continues where it
stopped (`RetentionReport.more_left`). 0 as an age turns that kind of cleanup off.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    func,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB

from models import OutboxEvent, Verification, utcnow
from models.db import Database

log = structlog.get_logger(__name__)

DEFAULT_OUTBOX_MAX_AGE_SECONDS = 7 * 24 * 3600
DEFAULT_PAYLOAD_MAX_AGE_SECONDS = 30 * 24 * 3600
DEFAULT_BATCH_SIZE = 1000
DEFAULT_MAX_BATCHES = 1000
DEFAULT_PAUSE_SECONDS = 0.02

RESPONSE_KEY = "response"

# The rows still holding a provider answer: the predicate of an (optional) partial index
# on verifications (finished_at, id) that makes the payload cleanup read only due rows.
# SQLite (JSON1): json_type is SQL NULL exactly when the key is absent.
RESPONSE_INDEX_WHERE = {
    "postgresql": "verifications.result ? 'response'",
    "sqlite": "json_type(verifications.result, '$.response') IS NOT NULL",
}


@dataclass(frozen=True)
class RetentionReport:
    outbox_deleted: int
    payloads_removed: int
    # True when a kind stopped at max_batches with more left for the next run.
    more_left: bool = False


class Retention:
    """Deletes old published outbox rows and strips old terminal verifications' payloads."""

    def __init__(
        self,
        db: Database,
        *,
        outbox_max_age_seconds: float = DEFAULT_OUTBOX_MAX_AGE_SECONDS,
        payload_max_age_seconds: float = DEFAULT_PAYLOAD_MAX_AGE_SECONDS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_batches: int = DEFAULT_MAX_BATCHES,
        pause_seconds: float = DEFAULT_PAUSE_SECONDS,
        time_budget_seconds: float | None = None,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if outbox_max_age_seconds < 0 or payload_max_age_seconds < 0:
            raise ValueError("retention ages must not be negative (0 turns a cleanup off)")
        if batch_size < 1 or max_batches < 1:
            raise ValueError("batch_size and max_batches must be at least 1")
        self.db = db
        self.outbox_max_age_seconds = outbox_max_age_seconds
        self.payload_max_age_seconds = payload_max_age_seconds
        self.batch_size = batch_size
        self.max_batches = max_batches
        self.pause_seconds = pause_seconds
        self.time_budget_seconds = time_budget_seconds
        self.clock = clock
        self.monotonic = monotonic

    def run(self) -> RetentionReport:
        """Both cleanups, as configured, within the time budget (if any)."""
        deadline = None
        if self.time_budget_seconds is not None:
            deadline = self.monotonic() + self.time_budget_seconds
        deleted, outbox_more = self.purge_outbox(deadline)
        removed, payload_more = self.remove_payloads(deadline)
        report = RetentionReport(deleted, removed, outbox_more or payload_more)
        log.info(
            "retention_applied",
            outbox_deleted=deleted,
            payloads_removed=removed,
            more_left=report.more_left,
        )
        return report

    def purge_outbox(self, deadline: float | None = None) -> tuple[int, bool]:
        """Delete outbox rows published before the cutoff; (rows deleted, more left)."""
        if self.outbox_max_age_seconds == 0:
            return 0, False
        cutoff = self.clock() - timedelta(seconds=self.outbox_max_age_seconds)
        total = 0
        for batch in range(self.max_batches):
            if not self._go_on(deadline, pause=batch > 0):
                return total, True
            with self.db.session() as session, session.begin():
                ids = list(
                    session.scalars(
                        select(OutboxEvent.id)
                        .where(
                            OutboxEvent.published_at.is_not(None),
                            OutboxEvent.published_at < cutoff,
                        )
                        .order_by(OutboxEvent.published_at, OutboxEvent.id)
                        .limit(self.batch_size)
                    )
                )
                if ids:
                    session.execute(
                        delete(OutboxEvent)
                        .where(
                            OutboxEvent.id.in_(ids),
                            # Re-checked: a row is deleted only if still published and old.
                            OutboxEvent.published_at < cutoff,
                        )
                        .execution_options(synchronize_session=False)
                    )
            total += len(ids)
            if len(ids) < self.batch_size:
                return total, False
        return total, True

    def remove_payloads(self, deadline: float | None = None) -> tuple[int, bool]:
        """Remove `response` from long-terminal verifications; (rows changed, more left)."""
        if self.payload_max_age_seconds == 0:
            return 0, False
        cutoff = self.clock() - timedelta(seconds=self.payload_max_age_seconds)
        total = 0
        after: tuple[datetime, int] | None = None
        for batch in range(self.max_batches):
            if not self._go_on(deadline, pause=batch > 0):
                return total, True
            with self.db.session() as session, session.begin():
                dialect = session.get_bind().dialect.name
                terminal_long_ago = (
                    Verification.finished_at.is_not(None),
                    Verification.finished_at < cutoff,
                    _has_response(dialect),
                )
                # Oldest first, each batch after the last one's (finished_at, id): reads an
                # index on finished_at (best: partial, rows still holding a response).
                query = select(Verification.finished_at, Verification.id).where(*terminal_long_ago)
                if after is not None:
                    query = query.where(
                        or_(
                            Verification.finished_at > after[0],
                            and_(Verification.finished_at == after[0], Verification.id > after[1]),
                        )
                    )
                keys = session.execute(
                    query.order_by(Verification.finished_at, Verification.id).limit(self.batch_size)
                ).all()
                if keys:
                    # The conditions again, in the UPDATE: a verification re-opened since
                    # (finished_at reset) keeps its answer. `version` is not bumped: this
                    # is not a change a poller could conflict with.
                    session.execute(
                        update(Verification)
                        .where(Verification.id.in_([key.id for key in keys]), *terminal_long_ago)
                        .values(result=_without_response(dialect))
                        .execution_options(synchronize_session=False)
                    )
                    last = keys[-1]
                    after = (last.finished_at, last.id)
            total += len(keys)
            if len(keys) < self.batch_size:
                return total, False
        return total, True

    def _go_on(self, deadline: float | None, *, pause: bool) -> bool:
        """Before a batch: is there time for it? Between batches, pause first."""
        if pause and self.pause_seconds > 0:
            time.sleep(self.pause_seconds)
        return deadline is None or self.monotonic() < deadline


def _has_response(dialect: str) -> ColumnElement[bool]:
    """`result` has a `response` key (whatever its value, JSON null included).

    Literal SQL, no bound parameter, so the database can match it against the predicate
    of a partial index (see RESPONSE_INDEX_WHERE).
    """
    return literal_column(RESPONSE_INDEX_WHERE[dialect if dialect == "postgresql" else "sqlite"])


def _without_response(dialect: str) -> ColumnElement[Any]:
    """`result` with its `response` key removed, computed by the database."""
    if dialect == "postgresql":
        return type_coerce(Verification.result, JSONB).op("-")(literal(RESPONSE_KEY))
    return func.json_remove(Verification.result, f"$.{RESPONSE_KEY}")
