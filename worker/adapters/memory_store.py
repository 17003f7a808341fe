"""An in-memory store with the SQL store's contract, for fast unit tests of the services.

Same guarantees as `SqlStore`: a decision is applied only if its row is still at
the version it was made from, and only applied decisions add history, events,
actions and follow-ups. Thread-safe (one lock), so concurrency tests can race it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from worker.domain.actions import ActionRecord
from worker.domain.decisions import Decision, StoredVerification, TransitionRecord
from worker.domain.outbox import Written
from worker.domain.statuses import VerificationStatus


@dataclasses.dataclass
class MemoryRow:
    stored: StoredVerification
    next_poll_at: datetime | None
    last_error: str | None = None
    last_error_code: str | None = None
    result: dict[str, Any] | None = None
    finished_at: datetime | None = None


class MemoryStore:
    def __init__(self) -> None:
        self.rows: dict[int, MemoryRow] = {}
        self.transitions: list[tuple[int, TransitionRecord]] = []
        self.events: list[dict[str, Any]] = []
        self.actions: list[tuple[int, ActionRecord]] = []
        self._lock = threading.Lock()

    def add(
        self,
        provider: str,
        external_id: str,
        *,
        now: datetime,
        verification_type: str | None = None,
        status: VerificationStatus = VerificationStatus.PENDING,
        expires_at: datetime | None = None,
    ) -> int:
        with self._lock:
            for row in self.rows.values():
                if (row.stored.provider, row.stored.external_id) == (provider, external_id):
                    return row.stored.id
            verification_id = len(self.rows) + 1
            self.rows[verification_id] = MemoryRow(
                StoredVerification(
                    id=verification_id,
                    provider=provider,
                    external_id=external_id,
                    verification_type=verification_type,
                    status=status,
                    provider_status=None,
                    version=1,
                    created_at=now,
                    status_since=now,
                    polling_since=now,
                    finished_at=now if status.is_terminal else None,
                    expires_at=expires_at,
                ),
                next_poll_at=now if not status.is_terminal or expires_at is not None else None,
                finished_at=now if status.is_terminal else None,
            )
            return verification_id

    def load(self, ids: Sequence[int]) -> list[StoredVerification]:
        with self._lock:
            return [self.rows[i].stored for i in ids if i in self.rows]

    def apply(self, decisions: Sequence[Decision]) -> Written:
        """Its events are never published (no relay reads this store): none is held back."""
        applied: list[Decision] = []
        follow_ups: list[Decision] = []
        with self._lock:
            for decision in decisions:
                row = self.rows.get(decision.stored.id)
                if row is None or row.stored.version != decision.stored.version:
                    continue
                update = decision.update
                row.stored = dataclasses.replace(
                    row.stored,
                    status=update.status,
                    provider_status=update.provider_status,
                    version=row.stored.version + 1,
                    poll_attempts=update.poll_attempts,
                    error_count=update.error_count,
                    permanent_error_count=update.permanent_error_count,
                    total_polls=update.total_polls,
                    status_since=update.status_since or row.stored.status_since,
                    polling_since=update.polling_since or row.stored.polling_since,
                    finished_at=update.finished_at,
                    expires_at=update.expires_at or row.stored.expires_at,
                    reverification_event_at=(
                        update.reverification_event_at or row.stored.reverification_event_at
                    ),
                    last_sync_at=update.last_sync_at or row.stored.last_sync_at,
                )
                row.next_poll_at = update.next_poll_at
                row.last_error = update.last_error
                row.last_error_code = update.last_error_code
                row.finished_at = update.finished_at
                if update.result is not None:
                    row.result = update.result
                if decision.transition is not None:
                    self.transitions.append((row.stored.id, decision.transition))
                if decision.event is not None:
                    self.events.append(decision.event)
                self.actions.extend((row.stored.id, action) for action in decision.actions)
                if decision.follow_up_external_id:
                    follow_ups.append(decision)
                applied.append(decision)
        for decision in follow_ups:
            assert decision.follow_up_external_id is not None
            self.add(
                decision.stored.provider,
                decision.follow_up_external_id,
                now=decision.update.updated_at,
                verification_type=decision.stored.verification_type,
            )
        return Written(applied)

    def claim_due(
        self, provider: str, *, now: datetime, limit: int, lease_seconds: float
    ) -> list[int]:
        with self._lock:
            due = sorted(
                (row.next_poll_at, row.stored.id)
                for row in self.rows.values()
                if row.stored.provider == provider
                and row.next_poll_at is not None
                and row.next_poll_at <= now
            )[: max(limit, 0)]
            for _, verification_id in due:
                self.rows[verification_id].next_poll_at = now + timedelta(seconds=lease_seconds)
            return [verification_id for _, verification_id in due]
