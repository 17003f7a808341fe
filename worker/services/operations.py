"""Things people and apps ask of one verification: poll it now, re-open it.

- `poll_now_many` / `poll_now`: someone heard something (a provider's webhook or
  status stream, an app): poll these verifications within seconds, through the same
  guarded path. A hint's content is not trusted, the poll is. Repeated nudges within
  `window_seconds` collapse into one poll; the poll counts against the provider's rate
  limit like any other. It is the one poll-now path (`poll_now` is a batch of one): the
  task, the CLI and the HTTP service give it the queue the polls go to (`PollQueue`).
- `reopen`: an operator puts a `failed` or `timed_out` verification back to the
  status it had before it ended, with its own transition and event and a fresh
  maximum age.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from worker.domain.errors import RequestRejected
from worker.domain.statuses import VerificationStatus
from worker.services.ports import PollQueue

NUDGE_KEY_PREFIX = "kyc-poller:nudge:"


class NudgeOutcome(StrEnum):
    SCHEDULED = "scheduled"  # claimed for a poll now
    COLLAPSED = "collapsed"  # a nudge within the window already asked for that poll
    TERMINAL = "terminal"  # it has its final decision: nothing to poll
    UNKNOWN = "unknown"  # not tracked


class PollNotEnqueued(Exception):
    """Verifications were claimed for a poll, but the queue did not take the task.

    Nothing is lost: the claim's lease runs out and the sweep polls them then.
    """

    def __init__(self, verification_ids: Sequence[int], cause: BaseException) -> None:
        ids = list(verification_ids)
        shown = ids[0] if len(ids) == 1 else f"{ids[0]} and {len(ids) - 1} more"
        super().__init__(f"verification {shown}: poll not enqueued ({cause!r})")
        self.verification_ids = ids
        self.verification_id = ids[0]
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

    A batch of one (`poll_now_many`). Raises RequestRejected for an unknown provider or
    an id the provider cannot have, and PollNotEnqueued when the claim was made but the
    queue refused the task.
    """
    canonical = adapter_class(provider).canonical_id(external_id)
    nudges = poll_now_many(
        db,
        client,
        queue,
        provider,
        [canonical],
        now=now,
        lease_seconds=lease_seconds,
        window_seconds=window_seconds,
    )
    return nudges[canonical]


# Ids per SQL statement: well below SQLite's and PostgreSQL's bound-parameter limits.
_SQL_CHUNK = 500


def poll_now_many(
    db: Database,
    client: redis.Redis,
    queue: PollQueue,
    provider: str,
    external_ids: Sequence[str],
    *,
    now: datetime,
    lease_seconds: float,
    window_seconds: float = 5.0,
    batch_size: int = 25,
) -> dict[str, Nudge]:
    """Poll now each of a provider's verifications: ONE lookup, ONE pipeline of collapse
    keys, ONE claim, and `kyc.poll_batch` tasks of up to `batch_size` ids.

    Keyed by canonical id. An id the provider cannot have (not canonical) is `unknown`, as
    is one not tracked; a repeat within the call or within `window_seconds` of an earlier
    nudge is `collapsed`. Raises PollNotEnqueued (after trying every batch) when the queue
    refused some; those claims wait for their lease, as a lost poll always does.
    """
    adapter = adapter_class(provider)
    nudges: dict[str, Nudge] = {}
    wanted: list[str] = []
    for external_id in external_ids:
        try:
            canonical = adapter.canonical_id(external_id)
        except RequestRejected:
            nudges.setdefault(str(external_id)[:128], Nudge(NudgeOutcome.UNKNOWN))
            continue
        if canonical not in nudges and canonical not in wanted:
            wanted.append(canonical)
    rows = _lookup(db, provider, wanted)
    live: list[tuple[str, int, str]] = []
    for external_id in wanted:
        found = rows.get(external_id)
        if found is None:
            nudges[external_id] = Nudge(NudgeOutcome.UNKNOWN)
        elif VerificationStatus(found[1]).is_terminal:
            nudges[external_id] = Nudge(NudgeOutcome.TERMINAL, found[0], found[1])
        else:
            live.append((external_id, found[0], found[1]))
    if not live:
        return nudges
    window_ms = max(int(window_seconds * 1000), 1)
    with client.pipeline(transaction=False) as pipe:
        for _external_id, verification_id, _status in live:
            pipe.set(f"{NUDGE_KEY_PREFIX}{verification_id}", "1", nx=True, px=window_ms)
        first = pipe.execute()
    winners = [item for item, won in zip(live, first, strict=True) if won]
    for external_id, verification_id, status in live:
        nudges[external_id] = Nudge(NudgeOutcome.COLLAPSED, verification_id, status)
    claimed = _claim(db, [item[1] for item in winners], now + timedelta(seconds=lease_seconds))
    scheduled: list[int] = []
    for external_id, verification_id, status in winners:
        if verification_id in claimed:
            nudges[external_id] = Nudge(NudgeOutcome.SCHEDULED, verification_id, status)
            scheduled.append(verification_id)
        else:  # it ended between the lookup and the claim
            nudges[external_id] = Nudge(NudgeOutcome.TERMINAL, verification_id, status)
    refused: list[int] = []
    cause: BaseException | None = None
    size = max(batch_size, 1)
    for start in range(0, len(scheduled), size):
        batch = scheduled[start : start + size]
        try:
            queue.enqueue_polls(batch)
        except Exception as exc:  # kombu's OperationalError and friends: the lease covers it
            refused.extend(batch)
            cause = exc
    if cause is not None:
        raise PollNotEnqueued(refused, cause) from cause
    return nudges


def _lookup(db: Database, provider: str, external_ids: Sequence[str]) -> dict[str, tuple[int, str]]:
    """(id, status) of each tracked (provider, external id), in as few queries as possible."""
    found: dict[str, tuple[int, str]] = {}
    with db.session() as session:
        for start in range(0, len(external_ids), _SQL_CHUNK):
            chunk = external_ids[start : start + _SQL_CHUNK]
            for row in session.execute(
                select(Verification.external_id, Verification.id, Verification.status).where(
                    Verification.provider == provider, Verification.external_id.in_(chunk)
                )
            ):
                found[row.external_id] = (row.id, str(row.status))
    return found


def _claim(db: Database, verification_ids: Sequence[int], until: datetime) -> set[int]:
    """Claim as the sweep does (the batch polls them now, the lease covers a loss); only
    rows still scheduled (not terminal) are claimed. One transaction."""
    claimed: set[int] = set()
    if not verification_ids:
        return claimed
    with db.session() as session, session.begin():
        for start in range(0, len(verification_ids), _SQL_CHUNK):
            chunk = verification_ids[start : start + _SQL_CHUNK]
            result = session.execute(
                update(Verification)
                .where(Verification.id.in_(chunk), Verification.next_poll_at.is_not(None))
                .values(next_poll_at=until)
                .returning(Verification.id)
            )
            claimed.update(int(value) for value in result.scalars())
    return claimed


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
    if not store.apply([decision]).applied:
        raise ValueError("the verification changed while it was being re-opened; try again")
    return row.id, to_status
