"""One poll of one verification: ask the provider, record what changed.

The provider is called outside any database transaction. Its answer is then
written in ONE transaction — the new state, a transition row and an outbox
event — guarded by the row's version: if another worker wrote the row since we
read it, our write matches nothing and we drop our observation (the other
worker's is at least as fresh), so concurrent polls yield one transition.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import structlog
from sqlalchemy import update
from sqlalchemy.orm import Session

from models import OutboxEvent, Transition, Verification, VerificationStatus, utcnow
from models.db import Database
from worker.adapters.base import (
    PermanentProviderError,
    PollResult,
    ProviderAdapter,
    ProviderError,
    TransientProviderError,
)
from worker.config import Settings
from worker.domain.backoff import next_poll_time
from worker.domain.events import StatusChange, build_status_event
from worker.domain.ids import InvalidExternalIdError, validate_external_id
from worker.services.tracking import insert_verification_if_absent

log = structlog.get_logger(__name__)

PollAction = Literal["missing", "already_terminal", "transition", "unchanged", "error", "conflict"]
MAX_ERROR_TEXT = 500


@dataclass(frozen=True)
class PollOutcome:
    verification_id: int
    action: PollAction
    status: str | None = None
    next_poll_at: datetime | None = None
    event_id: str | None = None
    error_code: str | None = None


@dataclass(frozen=True)
class _Snapshot:
    """The row as read before calling the provider."""

    id: int
    provider: str
    external_id: str
    verification_type: str | None
    status: VerificationStatus
    provider_status: str | None
    version: int
    created_at: datetime
    poll_attempts: int
    error_count: int
    permanent_error_count: int


@dataclass(frozen=True)
class _NewStatus:
    status: VerificationStatus
    provider_status: str | None
    reason: str
    error_code: str | None = None
    related_external_id: str | None = None


class Poller:
    """Polls verifications by id; plain code, no Celery, so it is testable directly."""

    def __init__(
        self,
        db: Database,
        adapters: Mapping[str, ProviderAdapter],
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.adapters = adapters
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.SystemRandom()

    def poll(self, verification_id: int) -> PollOutcome:
        snapshot = self._read(verification_id)
        if snapshot is None:
            log.warning("poll_skipped_missing", verification_id=verification_id)
            return PollOutcome(verification_id, "missing")
        bound = log.bind(verification_id=snapshot.id, provider=snapshot.provider)
        if snapshot.status.is_terminal:
            bound.info("poll_skipped_terminal", status=snapshot.status.value)
            return PollOutcome(snapshot.id, "already_terminal", status=snapshot.status.value)

        now = self.clock()
        age = (now - snapshot.created_at).total_seconds()
        if age >= self.settings.max_age_seconds:
            bound.warning("verification_timed_out", age_seconds=round(age))
            new = _NewStatus(VerificationStatus.TIMED_OUT, snapshot.provider_status, "timed_out")
            return self._record_transition(snapshot, new, now, {})

        try:
            adapter = self.adapters.get(snapshot.provider)
            if adapter is None:
                raise TransientProviderError(
                    "provider_not_configured",
                    f"provider {snapshot.provider!r} has no base URL or credentials "
                    "configured on this worker",
                )
            result = adapter.fetch_status(snapshot.external_id, snapshot.verification_type)
        except ProviderError as error:
            return self._record_error(snapshot, error, self.clock())

        now = self.clock()
        stored = {"response": result.payload, "summary": result.summary}
        if result.status == snapshot.status:
            return self._record_unchanged(snapshot, result, now, stored)
        new = _NewStatus(
            result.status,
            result.provider_status,
            "provider",
            error_code=result.error_code,
            related_external_id=self._usable_related_id(snapshot, result.related_external_id),
        )
        return self._record_transition(snapshot, new, now, {"result": stored})

    def _usable_related_id(self, snapshot: _Snapshot, related_id: str | None) -> str | None:
        """A provider-supplied id is input like any other: only a plain token is followed."""
        if related_id is None:
            return None
        try:
            return validate_external_id(related_id)
        except InvalidExternalIdError as exc:
            log.warning(
                "related_id_ignored",
                verification_id=snapshot.id,
                provider=snapshot.provider,
                reason=str(exc)[:200],
            )
            return None

    # -- reading -----------------------------------------------------------------

    def _read(self, verification_id: int) -> _Snapshot | None:
        with self.db.session() as session, session.begin():
            row = session.get(Verification, verification_id)
            if row is None:
                return None
            return _Snapshot(
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
            )

    # -- writing -----------------------------------------------------------------

    def _write(
        self,
        snapshot: _Snapshot,
        values: dict[str, Any],
        add_rows: Callable[[Session], None] | None = None,
    ) -> bool:
        """Update the row only if it is still at the version we read; then add `add_rows`.

        All in one transaction: False means another worker wrote first and nothing changed.
        """
        with self.db.session() as session, session.begin():
            result = session.execute(
                update(Verification)
                .where(Verification.id == snapshot.id, Verification.version == snapshot.version)
                .values(version=snapshot.version + 1, **values)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return False
            if add_rows is not None:
                add_rows(session)
        return True

    def _record_unchanged(
        self, snapshot: _Snapshot, result: PollResult, now: datetime, stored: dict[str, Any]
    ) -> PollOutcome:
        attempt = snapshot.poll_attempts + 1
        next_at = next_poll_time(now, attempt, self.settings.poll_backoff, self.rng)
        values = {
            "provider_status": result.provider_status,
            "result": stored,
            "poll_attempts": attempt,
            "error_count": 0,
            "permanent_error_count": 0,
            "total_polls": Verification.total_polls + 1,
            "last_error": None,
            "last_error_code": None,
            "last_polled_at": now,
            "updated_at": now,
            "next_poll_at": next_at,
        }
        if not self._write(snapshot, values):
            return self._conflict(snapshot)
        log.debug(
            "poll_unchanged",
            verification_id=snapshot.id,
            provider=snapshot.provider,
            status=snapshot.status.value,
            next_poll_in=round((next_at - now).total_seconds(), 1),
        )
        return PollOutcome(snapshot.id, "unchanged", snapshot.status.value, next_at)

    def _record_error(
        self, snapshot: _Snapshot, error: ProviderError, now: datetime
    ) -> PollOutcome:
        bound = log.bind(verification_id=snapshot.id, provider=snapshot.provider)
        permanent_count = snapshot.permanent_error_count + (1 if error.permanent else 0)
        if isinstance(error, PermanentProviderError) and (
            permanent_count >= self.settings.max_permanent_errors
        ):
            bound.error(
                "verification_failed",
                error_code=error.code,
                error=error.message,
                consecutive_permanent_errors=permanent_count,
            )
            new = _NewStatus(
                VerificationStatus.FAILED,
                error.provider_status or snapshot.provider_status,
                "provider_error",
                error_code=error.code,
            )
            extra = {"last_error": error.message[:MAX_ERROR_TEXT], "last_error_code": error.code}
            return self._record_transition(snapshot, new, now, extra)

        error_count = snapshot.error_count + 1
        next_at = next_poll_time(
            now,
            error_count - 1,
            self.settings.error_backoff,
            self.rng,
            at_least=error.retry_after,
        )
        values: dict[str, Any] = {
            "error_count": error_count,
            "permanent_error_count": permanent_count,
            "total_polls": Verification.total_polls + 1,
            "last_error": error.message[:MAX_ERROR_TEXT],
            "last_error_code": error.code,
            "last_polled_at": now,
            "updated_at": now,
            "next_poll_at": next_at,
        }
        if error.provider_status is not None:
            values["provider_status"] = error.provider_status[:128]
        if not self._write(snapshot, values):
            return self._conflict(snapshot)
        (bound.error if error.permanent else bound.warning)(
            "poll_failed",
            error_code=error.code,
            error=error.message,
            permanent=error.permanent,
            http_status=error.http_status,
            consecutive_errors=error_count,
            next_poll_in=round((next_at - now).total_seconds(), 1),
        )
        return PollOutcome(
            snapshot.id, "error", snapshot.status.value, next_at, error_code=error.code
        )

    def _record_transition(
        self, snapshot: _Snapshot, new: _NewStatus, now: datetime, extra: dict[str, Any]
    ) -> PollOutcome:
        terminal = new.status.is_terminal
        next_at = None if terminal else next_poll_time(now, 0, self.settings.poll_backoff, self.rng)
        values: dict[str, Any] = {
            "status": new.status.value,
            "provider_status": new.provider_status,
            "poll_attempts": 0,
            "error_count": 0,
            "permanent_error_count": 0,
            "last_error": None,
            "last_error_code": None,
            "updated_at": now,
            "next_poll_at": next_at,
            "finished_at": now if terminal else None,
        }
        if new.reason != "timed_out":
            values["total_polls"] = Verification.total_polls + 1
            values["last_polled_at"] = now
        values.update(extra)
        new_version = snapshot.version + 1
        event = build_status_event(
            StatusChange(
                verification_id=snapshot.id,
                verification_version=new_version,
                provider=snapshot.provider,
                external_id=snapshot.external_id,
                verification_type=snapshot.verification_type,
                from_status=snapshot.status.value,
                to_status=new.status.value,
                terminal=terminal,
                provider_status=new.provider_status,
                reason=new.reason,
                error_code=new.error_code,
                related_external_id=new.related_external_id,
                occurred_at=now,
            )
        )

        def add_history(session: Session) -> None:
            session.add(
                Transition(
                    verification_id=snapshot.id,
                    version=new_version,
                    from_status=snapshot.status.value,
                    to_status=new.status.value,
                    provider_status=new.provider_status,
                    reason=new.reason,
                    error_code=new.error_code,
                    occurred_at=now,
                )
            )
            session.add(
                OutboxEvent(
                    event_id=event["event_id"],
                    event_type=event["event_type"],
                    verification_id=snapshot.id,
                    payload=event,
                    created_at=now,
                )
            )
            if new.related_external_id:
                # Bank131 already_exists: follow the earlier check it points at.
                insert_verification_if_absent(
                    session,
                    provider=snapshot.provider,
                    external_id=new.related_external_id,
                    verification_type=snapshot.verification_type,
                    now=now,
                )

        if not self._write(snapshot, values, add_history):
            return self._conflict(snapshot)
        log.info(
            "status_changed",
            verification_id=snapshot.id,
            provider=snapshot.provider,
            from_status=snapshot.status.value,
            to_status=new.status.value,
            provider_status=new.provider_status,
            reason=new.reason,
            event_id=event["event_id"],
        )
        return PollOutcome(
            snapshot.id,
            "transition",
            new.status.value,
            next_at,
            event_id=event["event_id"],
            error_code=new.error_code,
        )

    def _conflict(self, snapshot: _Snapshot) -> PollOutcome:
        log.info(
            "poll_superseded",
            verification_id=snapshot.id,
            provider=snapshot.provider,
            read_version=snapshot.version,
        )
        return PollOutcome(snapshot.id, "conflict")
