"""What the HTTP API answers an app about one verification: "check before allowing action".

Status, since when, terminal or not, the adapter's non-personal summary and the last
error code; never the provider's raw answer (`result.response`, which holds personal
data) nor the error text (it may quote a provider). Read-only, one query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from models import Verification
from models.db import Database
from worker.adapters.registry import adapter_class
from worker.domain.statuses import VerificationStatus


@dataclass(frozen=True)
class AppStatus:
    verification_id: int
    provider: str
    external_id: str
    verification_type: str | None
    status: str
    since: datetime | None
    terminal: bool
    summary: dict[str, Any]
    last_error_code: str | None
    updated_at: datetime | None
    version: int

    def to_json(self) -> dict[str, Any]:
        return {
            "verification_id": self.verification_id,
            "provider": self.provider,
            "external_id": self.external_id,
            "verification_type": self.verification_type,
            "status": self.status,
            "since": None if self.since is None else self.since.isoformat(),
            "terminal": self.terminal,
            "summary": self.summary,
            "last_error_code": self.last_error_code,
            "updated_at": None if self.updated_at is None else self.updated_at.isoformat(),
            "version": self.version,
        }


def app_status(db: Database, provider: str, external_id: str) -> AppStatus | None:
    """The verification tracked as (provider, id), the id canonicalized; None if untracked.

    RequestRejected for an unknown provider or an id the provider cannot have.
    """
    canonical = adapter_class(provider).canonical_id(external_id)
    with db.session() as session:
        row = session.scalars(
            select(Verification).where(
                Verification.provider == provider, Verification.external_id == canonical
            )
        ).one_or_none()
        if row is None:
            return None
        result = row.result if isinstance(row.result, dict) else {}
        summary = result.get("summary")
        status = VerificationStatus(row.status)
        return AppStatus(
            verification_id=row.id,
            provider=row.provider,
            external_id=row.external_id,
            verification_type=row.verification_type,
            status=str(status),
            since=row.status_since or row.created_at,
            terminal=status.is_terminal,
            summary=summary if isinstance(summary, dict) else {},
            last_error_code=None if row.last_error_code is None else str(row.last_error_code),
            updated_at=row.updated_at,
            version=row.version,
        )
