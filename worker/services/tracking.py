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
