"""The entry point for apps: start tracking a verification, idempotently.

Everything is validated before anything is stored: the provider must be
known, the id valid for that provider and put into its canonical form (a
Predicate UUID in lower case, so its upper-case spelling is the same
verification), the type one the provider has. Tracking the same (provider, id)
again returns the same row.

A provider may have a ceiling of verifications being polled at once
(`<PROVIDER>_MAX_OPEN_VERIFICATIONS`, `OpenCeiling`): a new verification beyond it is
refused with the reason (`TrackingCeilingError`) and nothing is stored, so a flood of
junk ids from one app cannot spend the provider's rate budget for everyone. Counting a
provider's open rows reads its `(provider, next_poll_at)` index, bounded by the ceiling;
far below the ceiling a process counts again only every few seconds (between counts it
adds what it inserted itself), near it every time. Several processes inserting at once
can overshoot by what each inserts between its counts: the ceiling is a guard, not a quota.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from models import Verification, utcnow
from models.db import Database
from worker.adapters.registry import adapter_class
from worker.adapters.sql_store import insert_verification_if_absent
from worker.domain.errors import RequestRejected, TrackingCeilingError, TrackingConflictError

__all__ = [
    "OpenCeiling",
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


class OpenCeiling:
    """Per-provider ceilings of verifications being polled (0 or absent: none).

    Keeps, per provider, the last exact count and what this process inserted since, so
    that far below a ceiling tracking costs no count at all (see the module docstring).
    """

    # Far below the ceiling: count again after this long; within `NEAR` of it: every time.
    RECOUNT_SECONDS = 5.0
    NEAR = 0.9

    def __init__(
        self, limits: Mapping[str, int], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = {name: limit for name, limit in limits.items() if limit > 0}
        self.clock = clock
        self._lock = threading.Lock()
        # provider -> (counted at, open rows then + inserted by this process since)
        self._estimates: dict[str, tuple[float, int]] = {}

    def check(self, session: Session, provider: str) -> None:
        """Raise TrackingCeilingError when `provider` is at its ceiling."""
        limit = self.limits.get(provider)
        if limit is None:
            return
        with self._lock:
            estimate = self._estimates.get(provider)
        fresh = estimate is not None and self.clock() - estimate[0] < self.RECOUNT_SECONDS
        if not (fresh and estimate is not None and estimate[1] < limit * self.NEAR):
            open_rows = count_open(session, provider, limit)
            with self._lock:
                self._estimates[provider] = (self.clock(), open_rows)
            estimate = (0.0, open_rows)
        if estimate[1] >= limit:
            raise TrackingCeilingError(
                f"{provider} already has {limit} verifications being polled (its ceiling, "
                f"{provider.upper()}_MAX_OPEN_VERIFICATIONS): not tracked; try again once some "
                "have reached a decision"
            )

    def inserted(self, provider: str) -> None:
        """This process stored one more open verification of `provider`."""
        with self._lock:
            counted_at, open_rows = self._estimates.get(provider, (0.0, 0))
            self._estimates[provider] = (counted_at, open_rows + 1)


def count_open(session: Session, provider: str, limit: int) -> int:
    """`provider`'s verifications being polled, counted up to `limit` (its index only)."""
    polled = (
        select(Verification.id)
        .where(Verification.provider == provider, Verification.next_poll_at.is_not(None))
        .limit(limit)
        .subquery()
    )
    return int(session.scalar(select(func.count()).select_from(polled)) or 0)


def track_verification(
    db: Database,
    provider: object,
    external_id: object,
    verification_type: object = None,
    *,
    now: datetime | None = None,
    ceiling: OpenCeiling | None = None,
) -> TrackedVerification:
    """Validate and store a verification to poll; polling starts at the next beat tick.

    With a `ceiling`, a new verification of a provider at its ceiling is refused
    (TrackingCeilingError); one already tracked is still answered.
    """
    request = validate_tracking_request(provider, external_id, verification_type)
    if ceiling is not None:
        existing = _existing(db, request)
        if existing is not None:
            return existing
    with db.session() as session, session.begin():
        if ceiling is not None:
            ceiling.check(session, request.provider)
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
        _check_type(stored_type, request, created)
        if created and ceiling is not None:
            ceiling.inserted(request.provider)
        return TrackedVerification(verification_id, created, str(status))


def _existing(db: Database, request: TrackingRequest) -> TrackedVerification | None:
    """The verification if it is already tracked (answered whatever the ceiling says)."""
    with db.session() as session:
        found = session.execute(
            select(Verification.id, Verification.status, Verification.verification_type).where(
                Verification.provider == request.provider,
                Verification.external_id == request.external_id,
            )
        ).one_or_none()
        if found is None:
            return None
        _check_type(found.verification_type, request, created=False)
        return TrackedVerification(found.id, False, str(found.status))


def _check_type(stored_type: str | None, request: TrackingRequest, created: bool) -> None:
    if not created and stored_type != request.verification_type:
        raise TrackingConflictError(
            f"{request.provider} verification {request.external_id!r} is already tracked "
            f"as type {stored_type!r}, not {request.verification_type!r}"
        )


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
