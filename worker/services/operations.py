"""Things people and apps ask of one verification: poll it now, re-open it.

- `poll_now`: an app heard something (typically the provider's webhook): poll this
  verification within seconds, through the same guarded path. The webhook's content
  is not trusted, the poll is. Repeated nudges within `window_seconds` collapse into
  one poll; the poll counts against the provider's rate limit like any other. It is
  the one poll-now path: the task, the CLI (and any later caller) give it the queue
  the poll goes to (`PollQueue`).
- `reopen`: an operator puts a `failed` or `timed_out` verification back to the
  status it had before it ended, with its own transition and event and a fresh
  maximum age.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import redis
from sqlalchemy import select, update

from models import Transition, Verification
from models.db import Database
from worker.adapters.registry import adapter_class
from worker.adapters.sql_store import SqlStore
from worker.domain.decisions import PollPolicy, reopened
from worker.domain.statuses import VerificationStatus
from worker.services.ports import PollQueue

NUDGE_KEY_PREFIX = "kyc-poller:nudge:"


class NudgeOutcome(StrEnum):
    SCHEDULED = "scheduled"  # claimed for a poll now
    COLLAPSED = "collapsed"  # a nudge within the window already asked for that poll
    TERMINAL = "terminal"  # it has its final decision: nothing to poll
    UNKNOWN = "unknown"  # not tracked


class PollNotEnqueued(Exception):
    """The verification was claimed for a poll, but the queue did not take the task.

    Nothing is lost: the claim's lease runs out and the sweep polls it then.
    """

    def __init__(self, verification_id: int, cause: BaseException) -> None:
        super().__init__(f"verification {verification_id}: poll not enqueued ({cause!r})")
        self.verification_id = verification_id
        self.cause = cause


@dataclass(frozen=True)
class Nudge:
    outcome: NudgeOutcome
    verification_id: int | None = None
    status: str | None = None


def find(db: Database, provider: str, external_id: object) -> Verification | None:
    """The tracked verification for (provider, id), the id taken in its canonical form."""
    canonical = adapter_class(provider).canonical_id(external_id)
    with db.session() as session:
        return session.scalars(
            select(Verification).where(
                Verification.provider == provider, Verification.external_id == canonical
            )
        ).one_or_none()


def poll_now(
    db: Database,
    client: redis.Redis,
    queue: PollQueue,
    provider: str,
    external_id: object,
    *,
    now: datetime,
    lease_seconds: float,
    window_seconds: float = 5.0,
) -> Nudge:
    """Claim the verification and enqueue its poll on `queue`, or say why not.

    Raises PollNotEnqueued when the claim was made but the queue refused the task.
    """
    row = find(db, provider, external_id)
    if row is None:
        return Nudge(NudgeOutcome.UNKNOWN)
    if row.status.is_terminal:
        return Nudge(NudgeOutcome.TERMINAL, row.id, row.status)
    key = f"{NUDGE_KEY_PREFIX}{row.id}"
    if not client.set(key, "1", nx=True, px=max(int(window_seconds * 1000), 1)):
        return Nudge(NudgeOutcome.COLLAPSED, row.id, row.status)
    with db.session() as session, session.begin():
        # A claim, as the sweep makes: the batch polls it now, the lease covers a loss.
        claimed = session.execute(
            update(Verification)
            .where(Verification.id == row.id, Verification.next_poll_at.is_not(None))
            .values(next_poll_at=now + timedelta(seconds=lease_seconds))
        )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return Nudge(NudgeOutcome.TERMINAL, row.id, row.status)
    try:
        queue.enqueue_polls([row.id])
    except Exception as exc:  # kombu's OperationalError and friends: the lease covers it
        raise PollNotEnqueued(row.id, exc) from exc
    return Nudge(NudgeOutcome.SCHEDULED, row.id, row.status)


def reopen(
    db: Database, provider: str, external_id: object, *, now: datetime, policy: PollPolicy
) -> tuple[int, VerificationStatus] | None:
    """Re-open a failed/timed_out verification; its id and new status, or None if unknown.

    ValueError when it is not failed or timed_out; a concurrent write makes it a no-op
    that the caller sees as ValueError too.
    """
    row = find(db, provider, external_id)
    if row is None:
        return None
    store = SqlStore(db)
    (stored,) = store.load([row.id])
    with db.session() as session:
        ended_from = session.scalar(
            select(Transition.from_status)
            .where(Transition.verification_id == row.id)
            .order_by(Transition.version.desc())
            .limit(1)
        )
    to_status = VerificationStatus(ended_from or VerificationStatus.PENDING)
    if to_status.is_terminal:
        to_status = VerificationStatus.PENDING
    decision = reopened(stored, to_status, now, policy)
    if not store.apply([decision]):
        raise ValueError("the verification changed while it was being re-opened; try again")
    return row.id, to_status
