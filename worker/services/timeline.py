"""A verification's history with what was asked of its provider: transitions and actions.

`kyc-poller history` shows transitions; a gu1 sync is no transition (no status
changed, no event) but an operator wants to see it between them. This merges
the two, by time, for a CLI to print. Read-only, bounded like every CLI query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from models import VerificationAction
from models.db import Database
from worker.services.admin import MAX_LIMIT, TransitionView, get_history, iso


@dataclass(frozen=True)
class ActionView:
    """One action (a sync) as stored."""

    kind: str
    outcome: str  # "accepted", or the error code of why it failed
    http_status: int | None
    detail: str | None  # the provider's status word in its answer
    verification_version: int  # the row version written with it (its poll's)
    occurred_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "outcome": self.outcome,
            "http_status": self.http_status,
            "detail": self.detail,
            "verification_version": self.verification_version,
            "occurred_at": iso(self.occurred_at),
        }


@dataclass(frozen=True)
class HistoryEntry:
    """A transition or an action, in one list (`entry` says which)."""

    entry: str  # "transition" | "action"
    occurred_at: datetime | None
    transition: TransitionView | None = None
    action: ActionView | None = None

    def to_json(self) -> dict[str, Any]:
        detail = self.transition if self.transition is not None else self.action
        assert detail is not None
        return {"entry": self.entry, **detail.to_json()}


def get_actions(db: Database, verification_id: int, limit: int = 100) -> list[ActionView]:
    """The verification's latest `limit` actions, oldest first."""
    with db.session() as session:
        rows = session.scalars(
            select(VerificationAction)
            .where(VerificationAction.verification_id == verification_id)
            .order_by(VerificationAction.occurred_at.desc(), VerificationAction.id.desc())
            .limit(max(1, min(limit, MAX_LIMIT)))
        ).all()
        return [
            ActionView(
                kind=row.kind,
                outcome=row.outcome,
                http_status=row.http_status,
                detail=row.detail,
                verification_version=row.verification_version,
                occurred_at=row.occurred_at,
            )
            for row in reversed(rows)
        ]


def history_with_actions(
    db: Database, verification_id: int, limit: int = 100
) -> list[HistoryEntry]:
    """The latest `limit` transitions and actions together, oldest first.

    At the same moment an action comes first: a sync is sent before the poll
    whose answer makes the transition it is written with.
    """
    bounded = max(1, min(limit, MAX_LIMIT))
    entries = [
        HistoryEntry("transition", t.occurred_at, transition=t)
        for t in get_history(db, verification_id, bounded)
    ] + [
        HistoryEntry("action", a.occurred_at, action=a)
        for a in get_actions(db, verification_id, bounded)
    ]
    entries.sort(key=_order)
    return entries[-bounded:]


def _order(entry: HistoryEntry) -> tuple[float, int, int]:
    moment = entry.occurred_at.timestamp() if entry.occurred_at is not None else 0.0
    if entry.action is not None:
        return moment, entry.action.verification_version, 0
    assert entry.transition is not None
    return moment, entry.transition.version, 1
