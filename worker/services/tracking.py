"""The entry point for apps: start tracking a verification, idempotently.

Everything is validated before anything is stored: the provider must be
known, the id valid for that provider and put into its canonical form (a
Predicate UUID in lower case, so its upper-case spelling is the same
verification), the type one the provider has. Tracking the same (provider, id)
again returns the same row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from models import Verification, utcnow
from models.db import Database
from worker.adapters.registry import adapter_class
from worker.adapters.sql_store import insert_verification_if_absent
from worker.domain.errors import RequestRejected, TrackingConflictError

__all__ = [
    "TrackedVerification",
    "TrackingRequest",
    "insert_verification_if_absent",
    "track_verification",
    "validate_tracking_request",
]


@dataclass(frozen=True)
class TrackedVerification:
    verification_id: int
    created: bool
    status: str


@dataclass(frozen=True)
class TrackingRequest:
    provider: str
    external_id: str
    verification_type: str | None


def validate_tracking_request(
    provider: object, external_id: object, verification_type: object = None
) -> TrackingRequest:
    """Check a request from an app; raise RequestRejected (a ValueError) with the reason."""
    if not isinstance(provider, str):
        raise RequestRejected(f"provider must be a string, got {type(provider).__name__}")
    adapter = adapter_class(provider)  # raises UnknownProviderError
    canonical_id = adapter.canonical_id(external_id)
    canonical_type = adapter.canonical_type(verification_type)
    return TrackingRequest(provider, canonical_id, canonical_type)


def track_verification(
    db: Database,
    provider: object,
    external_id: object,
    verification_type: object = None,
    *,
    now: datetime | None = None,
) -> TrackedVerification:
    """Validate and store a verification to poll; polling starts at the next beat tick."""
    request = validate_tracking_request(provider, external_id, verification_type)
    with db.session() as session, session.begin():
        if now is None and session.get_bind().dialect.name == "postgresql":
            verification_id, created, status, stored_type = _track_in_database(session, request)
        else:
            verification_id, created = insert_verification_if_absent(
                session,
                provider=request.provider,
                external_id=request.external_id,
                verification_type=request.verification_type,
                now=now or utcnow(),
            )
            # Only the columns tracking returns (never `result`, the provider's payload).
            status, stored_type = session.execute(
                select(Verification.status, Verification.verification_type).where(
                    Verification.id == verification_id
                )
            ).one()
        if not created and stored_type != request.verification_type:
            raise TrackingConflictError(
                f"{request.provider} verification {request.external_id!r} is already tracked "
                f"as type {stored_type!r}, not {request.verification_type!r}"
            )
        return TrackedVerification(verification_id, created, str(status))


TRACK_FUNCTION = "kyc_track_verification"


def _track_in_database(
    session: Session, request: TrackingRequest
) -> tuple[int, bool, str, str | None]:
    """PostgreSQL: the row through `kyc_track_verification` (the only thing kyc_app may do)."""
    row = session.execute(
        text(
            "SELECT verification_id, created, status, verification_type "
            f"FROM {TRACK_FUNCTION}(:provider, :external_id, :verification_type)"
        ),
        {
            "provider": request.provider,
            "external_id": request.external_id,
            "verification_type": request.verification_type,
        },
    ).one()
    return int(row.verification_id), bool(row.created), str(row.status), row.verification_type
