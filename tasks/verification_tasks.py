"""Celery tasks: thin wrappers over the plain services in `worker`.

Queues (`worker.domain.queues`): apps' tasks on `kyc.public`, internal ones on `kyc.polls`
and `kyc.control`; a worker runs only its queues' tasks (`tasks.guard`).

- kyc.track_verification: the entry point apps call (`kyc.public`). A database
  that is down is retried with backoff (TRACK_MAX_RETRIES, about half an hour),
  never dropped; the outcome (the row, or why it was refused) is stored in the
  result backend for the app to read.
- kyc.schedule_due_polls: beat, every few seconds (control queue): claims due
  verifications per provider and enqueues them as poll batches.
- kyc.poll_batch: polls a batch concurrently and writes it at once (poll queue); the
  engine publishes its events right after commit, and the ordered relay runs after it
  when some were left (held back behind an earlier unpublished event, or refused).
- kyc.poll_verification: one verification, through the same engine.
- kyc.poll_now: an app heard something (a provider webhook): poll that verification
  within seconds; nudges within a few seconds collapse into one poll.
- kyc.relay_outbox: beat (control queue): the safety net for the event relay.
- kyc.apply_retention: beat (poll queue): deletes old published outbox rows, removes
  long-terminal verifications' provider payloads, trims the event stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
import structlog
from celery import Task, shared_task

from models import utcnow
from tasks.guard import GuardedTask
from worker.adapters import metrics
from worker.config import POLL_QUEUE
from worker.domain.errors import RequestRejected, StorageUnavailableError, TrackingCeilingError
from worker.runtime import get_runtime
from worker.services import operations, tracking
from worker.services.polling import BatchReport
from worker.services.storage_errors import storage_errors

log = structlog.get_logger(__name__)


# Retried every 1, 2, 4 … 60 s: 40 retries keep a request for about half an hour.
TRACK_MAX_RETRIES = 40
TRACK_MAX_BACKOFF_SECONDS = 60


@shared_task(
    base=GuardedTask,
    name="kyc.track_verification",
    bind=True,
    acks_late=True,
    ignore_result=False,
    max_retries=TRACK_MAX_RETRIES,
)
def track_verification(
    self: Task, provider: str, external_id: str, verification_type: str | None = None
) -> dict[str, Any]:
    """Start tracking (provider, external_id); idempotent. Bad input fails with the reason."""
    try:
        with storage_errors():
            runtime = get_runtime()
            tracked = tracking.track_verification(
                runtime.db, provider, external_id, verification_type, ceiling=runtime.ceiling
            )
    except TrackingCeilingError:
        metrics.count_tracking(provider, "over_ceiling")
        raise
    except RequestRejected:
        metrics.count_tracking(provider, "rejected")
        raise
    except StorageUnavailableError as error:
        metrics.count_tracking(provider, "retried")
        countdown = min(2**self.request.retries, TRACK_MAX_BACKOFF_SECONDS)
        log.warning(
            "tracking_retried",
            provider=provider,
            error=str(error),
            retries=self.request.retries,
            next_try_in=countdown,
        )
        raise self.retry(exc=error, countdown=countdown) from None
    metrics.count_tracking(provider, "created" if tracked.created else "existing")
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


@shared_task(base=GuardedTask, name="kyc.poll_batch", acks_late=True, reject_on_worker_lost=True)
def poll_batch(verification_ids: list[int]) -> dict[str, Any]:
    report = _poll(verification_ids)
    return {"polled": report.polled, "outcomes": dict(report.outcomes), "events": report.event_ids}


@shared_task(
    base=GuardedTask, name="kyc.poll_verification", acks_late=True, reject_on_worker_lost=True
)
def poll_verification(verification_id: int) -> dict[str, Any]:
    report = _poll([verification_id])
    return {
        "outcomes": dict(report.outcomes),
        "event_id": report.event_ids[0] if report.event_ids else None,
    }


class _PollBatchQueue:
    """`PollQueue` for code running in a worker: `kyc.poll_batch` on the poll queue."""

    def __init__(self, lease_seconds: float) -> None:
        self.lease_seconds = lease_seconds

    def enqueue_polls(self, verification_ids: Sequence[int]) -> None:
        # A batch still queued when its lease ran out is stale: the rows were claimed again.
        poll_batch.apply_async(
            (list(verification_ids),), queue=POLL_QUEUE, expires=self.lease_seconds
        )


@shared_task(base=GuardedTask, name="kyc.poll_now", acks_late=True, ignore_result=False)
def poll_now(provider: str, external_id: str) -> dict[str, Any]:
    """Poll (provider, external_id) now: scheduled, collapsed, terminal or unknown."""
    runtime = get_runtime()
    lease = runtime.settings.claim_lease_seconds
    with storage_errors():
        nudge = operations.poll_now(
            runtime.db,
            runtime.redis,
            _PollBatchQueue(lease),
            provider,
            external_id,
            now=utcnow(),
            lease_seconds=lease,
        )
    log.info(
        "poll_now",
        provider=provider,
        outcome=nudge.outcome.value,
        verification_id=nudge.verification_id,
    )
    return {
        "outcome": nudge.outcome.value,
        "verification_id": nudge.verification_id,
        "status": nudge.status,
    }


@shared_task(base=GuardedTask, name="kyc.schedule_due_polls", acks_late=True)
def schedule_due_polls() -> int:
    runtime = get_runtime()
    lease = runtime.settings.claim_lease_seconds
    claimed = 0
    with storage_errors():
        sweeps = runtime.sweeper.sweep(utcnow())
    for sweep in sweeps:
        for batch in sweep.batches:
            # A batch still queued when its lease ran out is stale: the rows were claimed again.
            poll_batch.apply_async((batch,), queue=POLL_QUEUE, expires=lease)
        claimed += sweep.claimed
        log.info(
            "polls_enqueued",
            provider=sweep.provider,
            count=sweep.claimed,
            batches=len(sweep.batches),
        )
    return claimed


@shared_task(base=GuardedTask, name="kyc.relay_outbox", acks_late=True)
def relay_outbox() -> int:
    try:
        with storage_errors():
            report = get_runtime().relay.relay_all()
    except Exception:
        metrics.count_relayed(metrics.RELAY_BEAT, 0, failed=True)
        raise
    metrics.count_relayed(
        metrics.RELAY_BEAT, report.published, failed=report.pending_error is not None
    )
    return report.published


@shared_task(base=GuardedTask, name="kyc.apply_retention", acks_late=True)
def apply_retention() -> dict[str, Any]:
    """Beat: old published outbox rows deleted, long-terminal payloads removed, stream trimmed.

    Runs on the poll queue: a run may take up to KYC_RETENTION_TIME_BUDGET_SECONDS and must
    not hold up the control worker's sweep; what is left is done by the next run.
    """
    runtime = get_runtime()
    with storage_errors():
        report = runtime.retention.run()
    trimmed = 0
    try:
        trimmed = runtime.relay.trim_stream()
    except redis.RedisError as exc:
        log.warning("event_stream_trim_failed", error=f"{type(exc).__name__}: {exc}")
    return {
        "outbox_deleted": report.outbox_deleted,
        "payloads_removed": report.payloads_removed,
        "more_left": report.more_left,
        "stream_entries_trimmed": trimmed,
    }


def _poll(verification_ids: list[int]) -> BatchReport:
    """A failed batch loses nothing: its rows' claim lease runs out and they are polled again."""
    runtime = get_runtime()
    with storage_errors():
        report = runtime.engine.poll_batch(verification_ids)
    if report.published or report.publish_failed:
        metrics.count_relayed(metrics.RELAY_DIRECT, report.published, failed=report.publish_failed)
    if report.left_for_relay:
        _relay_now()
    return report


def _relay_now() -> None:
    """Publish right after commit; any failure is left to the beat relay."""
    try:
        report = get_runtime().relay.relay_batch()
    except Exception as exc:  # the outbox keeps the event; beat retries
        metrics.count_relayed(metrics.RELAY_AFTER_POLL, 0, failed=True)
        log.warning("immediate_relay_failed", error=f"{type(exc).__name__}: {exc}")
        return
    metrics.count_relayed(
        metrics.RELAY_AFTER_POLL, report.published, failed=report.pending_error is not None
    )
