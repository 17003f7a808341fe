"""Celery tasks: thin wrappers over the plain functions in `worker`.

- kyc.track_verification: the entry point apps call.
- kyc.schedule_due_polls: beat, every few seconds; enqueues one poll per due verification.
- kyc.poll_verification: one poll; relays its event right after commit.
- kyc.relay_outbox: beat, every few seconds; the safety net for the event relay.
"""

from __future__ import annotations

from typing import Any

import structlog
from celery import shared_task

from models import utcnow
from worker.runtime import get_runtime
from worker.services import tracking
from worker.services.scheduling import claim_due_verifications

log = structlog.get_logger(__name__)


@shared_task(name="kyc.track_verification", acks_late=True)
def track_verification(
    provider: str, external_id: str, verification_type: str | None = None
) -> dict[str, Any]:
    """Start tracking (provider, external_id); idempotent. Bad input fails with the reason."""
    tracked = tracking.track_verification(
        get_runtime().db, provider, external_id, verification_type
    )
    log.info(
        "verification_tracked",
        verification_id=tracked.verification_id,
        provider=provider,
        created=tracked.created,
    )
    return {
        "verification_id": tracked.verification_id,
        "created": tracked.created,
        "status": tracked.status,
    }


@shared_task(name="kyc.poll_verification", acks_late=True, reject_on_worker_lost=True)
def poll_verification(verification_id: int) -> dict[str, Any]:
    runtime = get_runtime()
    with structlog.contextvars.bound_contextvars(verification_id=verification_id):
        outcome = runtime.poller.poll(verification_id)
        if outcome.action == "transition":
            _relay_now()
    return {"action": outcome.action, "status": outcome.status, "event_id": outcome.event_id}


@shared_task(name="kyc.schedule_due_polls", acks_late=True)
def schedule_due_polls() -> int:
    runtime = get_runtime()
    settings = runtime.settings
    ids = claim_due_verifications(
        runtime.db,
        now=utcnow(),
        limit=settings.claim_batch_size,
        lease_seconds=settings.claim_lease_seconds,
    )
    for verification_id in ids:
        # A poll still queued when its lease ran out is stale: the row was claimed again.
        poll_verification.apply_async((verification_id,), expires=settings.claim_lease_seconds)
    if ids:
        log.info("polls_enqueued", count=len(ids))
    return len(ids)


@shared_task(name="kyc.relay_outbox", acks_late=True)
def relay_outbox() -> int:
    report = get_runtime().relay.relay_all()
    return report.published


def _relay_now() -> None:
    """Publish right after commit; any failure is left to the beat relay."""
    try:
        get_runtime().relay.relay_batch()
    except Exception as exc:  # the outbox keeps the event; beat retries
        log.warning("immediate_relay_failed", error=f"{type(exc).__name__}: {exc}")
