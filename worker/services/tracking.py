"""The entry point for apps: start tracking a verification, idempotently.

Everything is validated before anything is stored: the provider must be
known, the id a plain token (and valid for that provider), the type one the
provider has. Tracking the same (provider, id) again returns the same row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from models import Verification, VerificationStatus, utcnow
from models.db import Database
from worker.adapters import get_adapter_class
from worker.domain.ids import validate_external_id


class TrackingConflictError(ValueError):
    """The verification is already tracked with a different verification type."""


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
    """Check a request from an app; raise ValueError (with the reason) on bad input."""
    if not isinstance(provider, str):
        raise ValueError(f"provider must be a string, got {type(provider).__name__}")
    adapter_class = get_adapter_class(provider)  # raises UnknownProviderError
    external_id = validate_external_id(external_id)
    if verification_type is not None and not isinstance(verification_type, str):
        raise ValueError(
            f"verification type must be a string, got {type(verification_type).__name__}"
        )
    verification_type = verification_type or adapter_class.default_verification_type
    adapter_class.validate_external_id(external_id, verification_type)
    return TrackingRequest(provider, external_id, verification_type)


def insert_verification_if_absent(
    session: Session,
    *,
    provider: str,
    external_id: str,
    verification_type: str | None,
    now: datetime,
) -> tuple[int, bool]:
    """Insert a new pending verification unless (provider, id) exists; return (id, created).

    Uses INSERT .. ON CONFLICT DO NOTHING, so two apps tracking the same
    verification at the same moment still end up with one row.
    """
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(Verification)
        .values(
            provider=provider,
            external_id=external_id,
            verification_type=verification_type,
            status=VerificationStatus.PENDING.value,
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
        verification_id, created = insert_verification_if_absent(
            session,
            provider=request.provider,
            external_id=request.external_id,
            verification_type=request.verification_type,
            now=now or utcnow(),
        )
        row = session.get(Verification, verification_id)
        assert row is not None
        if not created and row.verification_type != request.verification_type:
            raise TrackingConflictError(
                f"{request.provider} verification {request.external_id!r} is already tracked "
                f"as type {row.verification_type!r}, not {request.verification_type!r}"
            )
        return TrackedVerification(verification_id, created, row.status)
