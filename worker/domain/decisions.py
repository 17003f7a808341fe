"""The poll rules: what stored state plus one observation means, as a pure function.

`decide(stored, observation, now, policy, rng)` returns a `Decision`: the row's
new values, and for a status change the transition, its event and any follow-up.
No I/O here: a store applies a decision in one transaction guarded by
`stored.version` (a decision made from a stale read matches no row and is
dropped), so the rules are unit-tested in microseconds.

Observations:
- a `PollResult` (the provider answered);
- a `ProviderError` (it did not: transient, provider-wide, or permanent);
- `Deferred(until)` (not asked: its circuit is open or its rate is spent).
Whatever the observation, a verification older than the maximum age ends `timed_out`.

Invariants:
- a status change writes exactly one transition and one event, with version+1;
- provider-wide faults (outage, credentials) never count towards `failed`;
- a deferral changes no counter: it only moves `next_poll_at`;
- an unknown status word is recorded raw (cleaned, bounded) in `provider_status`,
  never counts towards `failed`, and is polled again at its own slow pace;
- everything written is storable: NUL characters and lone surrogates are
  removed from provider text, and the stored payload is capped.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from worker.domain.actions import MAX_DETAIL, ActionKind, ActionRecord
from worker.domain.backoff import BackoffSettings, next_poll_time
from worker.domain.errors import (
    ErrorCode,
    InvalidExternalIdError,
    PermanentProviderError,
    ProviderError,
    TransitionReason,
)
from worker.domain.events import StatusChange, build_status_event
from worker.domain.ids import validate_external_id
from worker.domain.results import PollResult
from worker.domain.reverification import approval_expiry, next_check
from worker.domain.schedule import DEFAULT_PLAN, SchedulePlan, next_poll_delay
from worker.domain.statuses import VerificationStatus
from worker.domain.sync import SyncAttempt, SyncPolicy

MAX_ERROR_TEXT = 500
MAX_PROVIDER_STATUS = 128
ERROR_BACKOFF = BackoffSettings(base=10.0, cap=1800.0, floor=2.0)
# ± fraction of a fixed pace (unknown words), so a fleet does not poll in lock-step.
PACE_JITTER = 0.1


@dataclass(frozen=True)
class PollPolicy:
    """The settings the rules read.

    `schedule`: when to poll after an answered poll (status-aware, see
    `worker.domain.schedule`); None selects the legacy full-jitter `poll_backoff`.
    Failed polls always use `error_backoff`.
    """

    schedule: SchedulePlan | None = DEFAULT_PLAN
    poll_backoff: BackoffSettings = field(default_factory=BackoffSettings)
    error_backoff: BackoffSettings = field(default_factory=lambda: ERROR_BACKOFF)
    max_age_seconds: float = 30 * 24 * 3600.0
    max_permanent_errors: int = 5
    # A provider answer larger than this (as stored JSON) is replaced by a marker.
    max_stored_payload_bytes: int = 256 * 1024
    # A status word the adapter's table lacks: polled again after this (±10 %), not the
    # error backoff. The provider answered; only our table is behind, and an operator may
    # map the word at any time (KYC_<PROVIDER>_STATUS_MAP_EXTRA).
    unknown_status_poll_seconds: float = 600.0
    # A watched approval (it has an expiry: worker.domain.reverification) is checked again
    # this often until its expiry; 0: only at the expiry.
    reverification_check_seconds: float = 86400.0
    # When to ask a provider that can (gu1) to re-sync a verification that looks stuck.
    sync: SyncPolicy = field(default_factory=SyncPolicy)
    # Per provider, how much its answered polls' waits stretch now (absent: 1): set per
    # batch from the adapting safety net (worker.domain.safety_net) while its hints arrive.
    # Status-aware schedules only, and never past a status's maximum gap.
    stretch: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredVerification:
    """The row as read before polling (without the stored payload)."""

    id: int
    provider: str
    external_id: str
    verification_type: str | None
    status: VerificationStatus
    provider_status: str | None
    version: int
    created_at: datetime
    poll_attempts: int = 0
    error_count: int = 0
    permanent_error_count: int = 0
    total_polls: int = 0
    # When the current status began, and where the maximum age counts from
    # (None on rows written before these existed: created_at stands in).
    status_since: datetime | None = None
    polling_since: datetime | None = None
    finished_at: datetime | None = None
    # An approval's re-verification time, and when its reverification_due event was made.
    expires_at: datetime | None = None
    reverification_event_at: datetime | None = None
    # The last sync asked of the provider (gu1), whatever its outcome.
    last_sync_at: datetime | None = None

    @property
    def watched(self) -> bool:
        """An approval kept under watch until its re-verification time (then its event)."""
        return (
            self.status is VerificationStatus.APPROVED
            and self.expires_at is not None
            and self.reverification_event_at is None
        )

    @property
    def age_from(self) -> datetime:
        return self.polling_since or self.created_at

    @property
    def in_status_since(self) -> datetime:
        return self.status_since or self.created_at


@dataclass(frozen=True)
class Deferred:
    """The provider was not asked (circuit open, rate spent): poll again at `until`."""

    until: datetime
    code: ErrorCode = ErrorCode.CIRCUIT_OPEN
    message: str = "not polled: the provider's circuit breaker is open"


Observation = PollResult | ProviderError | Deferred


class Outcome(StrEnum):
    UNCHANGED = "unchanged"
    TRANSITION = "transition"
    ERROR = "error"
    DEFERRED = "deferred"


@dataclass(frozen=True)
class RowUpdate:
    """Every column a decision writes (the store adds version = stored.version + 1)."""

    status: VerificationStatus
    provider_status: str | None
    poll_attempts: int
    error_count: int
    permanent_error_count: int
    total_polls: int
    last_error: str | None
    last_error_code: ErrorCode | None
    last_polled_at: datetime | None
    next_poll_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    # The provider's answer and our summary; None keeps what is stored.
    result: dict[str, Any] | None = field(default=None, repr=False)
    # Set on a status change (and a re-opening); None keeps what is stored.
    status_since: datetime | None = None
    polling_since: datetime | None = None
    # None keeps what is stored (re-verification time, its event's time, the last sync).
    expires_at: datetime | None = None
    reverification_event_at: datetime | None = None
    last_sync_at: datetime | None = None


@dataclass(frozen=True)
class TransitionRecord:
    version: int
    from_status: VerificationStatus
    to_status: VerificationStatus
    provider_status: str | None
    reason: TransitionReason
    error_code: ErrorCode | None
    occurred_at: datetime


@dataclass(frozen=True)
class Decision:
    stored: StoredVerification
    outcome: Outcome
    update: RowUpdate
    transition: TransitionRecord | None = None
    event: dict[str, Any] | None = None
    # Another verification to start tracking in the same transaction (Bank131 already_exists).
    follow_up_external_id: str | None = None
    error: ProviderError | None = None
    # What was asked of the provider besides the status check (a sync), written with this.
    actions: tuple[ActionRecord, ...] = ()

    @property
    def expected_version(self) -> int:
        return self.stored.version


def decide(
    stored: StoredVerification,
    observation: Observation,
    now: datetime,
    policy: PollPolicy,
    rng: random.Random,
) -> Decision:
    """The rules (see the module docstring); `stored` must not be terminal (a watched
    approval is decided by `worker.domain.watch.decide_watch`)."""
    if is_too_old(stored, now, policy):
        return timed_out(stored, now, policy)
    if isinstance(observation, Deferred):
        return _deferred(stored, observation, now)
    if isinstance(observation, ProviderError):
        return _errored(stored, observation, now, policy, rng)
    return _answered(stored, observation, now, policy, rng)


def next_answered_poll(
    provider: str,
    status: VerificationStatus,
    seconds_in_status: float,
    attempt: int,
    now: datetime,
    policy: PollPolicy,
    rng: random.Random,
) -> datetime:
    """When to poll after an answer: the status-aware schedule, or the legacy backoff."""
    if policy.schedule is None:
        return next_poll_time(now, attempt, policy.poll_backoff, rng)
    stretch = policy.stretch.get(provider, 1.0)
    delay = next_poll_delay(policy.schedule, provider, status, seconds_in_status, rng, stretch)
    return now + timedelta(seconds=delay)


def is_too_old(stored: StoredVerification, now: datetime, policy: PollPolicy) -> bool:
    return (now - stored.age_from).total_seconds() >= policy.max_age_seconds


def timed_out(stored: StoredVerification, now: datetime, policy: PollPolicy) -> Decision:
    """Maximum age reached: `timed_out`, without a poll."""
    return _transition(
        stored,
        now,
        to_status=VerificationStatus.TIMED_OUT,
        provider_status=stored.provider_status,
        reason=TransitionReason.TIMED_OUT,
        polled=False,
        policy=policy,
        rng=None,
    )


def _answered(
    stored: StoredVerification,
    result: PollResult,
    now: datetime,
    policy: PollPolicy,
    rng: random.Random,
) -> Decision:
    stored_result = storable({"response": result.payload, "summary": result.summary}, policy)
    provider_status = clean_text(result.provider_status, MAX_PROVIDER_STATUS)
    if result.status == stored.status:
        attempt = stored.poll_attempts + 1
        update = RowUpdate(
            status=stored.status,
            provider_status=provider_status,
            poll_attempts=attempt,
            error_count=0,
            permanent_error_count=0,
            total_polls=stored.total_polls + 1,
            last_error=None,
            last_error_code=None,
            last_polled_at=now,
            next_poll_at=next_answered_poll(
                stored.provider,
                stored.status,
                (now - stored.in_status_since).total_seconds(),
                attempt,
                now,
                policy,
                rng,
            ),
            finished_at=None,
            updated_at=now,
            result=stored_result,
        )
        return Decision(stored, Outcome.UNCHANGED, update)
    decision = _transition(
        stored,
        now,
        to_status=result.status,
        provider_status=provider_status,
        reason=TransitionReason.PROVIDER,
        error_code=result.error_code,
        follow_up=usable_related_id(result.related_external_id),
        result=stored_result,
        policy=policy,
        rng=rng,
    )
    expiry = approval_expiry(result.reverification, now)
    if result.status is not VerificationStatus.APPROVED or expiry is None:
        return decision
    # An approval that does not last is watched until its re-verification time.
    update = dataclass_replace(
        decision.update,
        expires_at=expiry,
        next_poll_at=next_check(now, expiry, policy.reverification_check_seconds, rng),
    )
    return dataclass_replace(decision, update=update)


def _errored(
    stored: StoredVerification,
    error: ProviderError,
    now: datetime,
    policy: PollPolicy,
    rng: random.Random,
) -> Decision:
    permanent_count = stored.permanent_error_count + (1 if error.permanent else 0)
    message = clean_text(error.message, MAX_ERROR_TEXT)
    if isinstance(error, PermanentProviderError) and permanent_count >= policy.max_permanent_errors:
        return _transition(
            stored,
            now,
            to_status=VerificationStatus.FAILED,
            provider_status=clean_text(error.provider_status, MAX_PROVIDER_STATUS)
            or stored.provider_status,
            reason=TransitionReason.PROVIDER_ERROR,
            error_code=error.code,
            last_error=message,
            error=error,
            policy=policy,
            rng=rng,
        )
    error_count = stored.error_count + 1
    provider_status = stored.provider_status
    if error.provider_status is not None:
        provider_status = clean_text(error.provider_status, MAX_PROVIDER_STATUS)
    if error.code is ErrorCode.UNKNOWN_STATUS:
        next_at = now + timedelta(
            seconds=max(
                policy.unknown_status_poll_seconds * rng.uniform(1 - PACE_JITTER, 1 + PACE_JITTER),
                1.0,
            )
        )
    else:
        next_at = next_poll_time(
            now, error_count - 1, policy.error_backoff, rng, at_least=error.retry_after
        )
    update = RowUpdate(
        status=stored.status,
        provider_status=provider_status,
        poll_attempts=stored.poll_attempts,
        error_count=error_count,
        permanent_error_count=permanent_count,
        total_polls=stored.total_polls + 1,
        last_error=message,
        last_error_code=error.code,
        last_polled_at=now,
        next_poll_at=next_at,
        finished_at=None,
        updated_at=now,
    )
    return Decision(stored, Outcome.ERROR, update, error=error)


def _deferred(stored: StoredVerification, deferred: Deferred, now: datetime) -> Decision:
    update = RowUpdate(
        status=stored.status,
        provider_status=stored.provider_status,
        poll_attempts=stored.poll_attempts,
        error_count=stored.error_count,
        permanent_error_count=stored.permanent_error_count,
        total_polls=stored.total_polls,
        last_error=deferred.message,
        last_error_code=deferred.code,
        last_polled_at=None,
        next_poll_at=max(deferred.until, now),
        finished_at=None,
        updated_at=now,
    )
    return Decision(stored, Outcome.DEFERRED, update)


def _transition(
    stored: StoredVerification,
    now: datetime,
    *,
    to_status: VerificationStatus,
    provider_status: str | None,
    reason: TransitionReason,
    policy: PollPolicy,
    rng: random.Random | None,
    error_code: ErrorCode | None = None,
    last_error: str | None = None,
    follow_up: str | None = None,
    result: dict[str, Any] | None = None,
    error: ProviderError | None = None,
    polled: bool = True,
) -> Decision:
    terminal = to_status.is_terminal
    next_at = None
    if not terminal:
        assert rng is not None, "a non-terminal status is polled again: rng needed"
        next_at = next_answered_poll(stored.provider, to_status, 0.0, 0, now, policy, rng)
    version = stored.version + 1
    update = RowUpdate(
        status=to_status,
        provider_status=provider_status,
        poll_attempts=0,
        error_count=0,
        permanent_error_count=0,
        total_polls=stored.total_polls + (1 if polled else 0),
        last_error=last_error,
        last_error_code=error_code if reason is TransitionReason.PROVIDER_ERROR else None,
        last_polled_at=now if polled else None,
        next_poll_at=next_at,
        finished_at=now if terminal else None,
        updated_at=now,
        result=result,
        status_since=now,
        polling_since=now if reason is TransitionReason.OPERATOR_RETRY else None,
    )
    record = TransitionRecord(
        version=version,
        from_status=stored.status,
        to_status=to_status,
        provider_status=provider_status,
        reason=reason,
        error_code=error_code,
        occurred_at=now,
    )
    event = build_status_event(
        StatusChange(
            verification_id=stored.id,
            verification_version=version,
            provider=stored.provider,
            external_id=stored.external_id,
            verification_type=stored.verification_type,
            from_status=stored.status.value,
            to_status=to_status.value,
            terminal=terminal,
            provider_status=provider_status,
            reason=reason.value,
            error_code=error_code.value if error_code is not None else None,
            related_external_id=follow_up,
            occurred_at=now,
            summary=_summary_of(result),
        )
    )
    return Decision(
        stored,
        Outcome.TRANSITION,
        update,
        transition=record,
        event=event,
        follow_up_external_id=follow_up,
        error=error,
    )


def _summary_of(result: dict[str, Any] | None) -> dict[str, Any]:
    """The summary of a stored result (cleaned by `storable`), or {} without an answer."""
    summary = result.get("summary") if result is not None else None
    return summary if isinstance(summary, dict) else {}


def with_sync(decision: Decision, attempt: SyncAttempt, now: datetime) -> Decision:
    """The poll's decision plus the sync asked before it: recorded, `last_sync_at` = now.

    A failed sync counts too: the sync window bounds attempts, not successes.
    """
    record = ActionRecord(
        kind=ActionKind.SYNC,
        outcome=attempt.outcome,
        occurred_at=now,
        http_status=attempt.http_status,
        detail=clean_text(attempt.provider_status, MAX_DETAIL),
    )
    update = dataclass_replace(decision.update, last_sync_at=now)
    return dataclass_replace(decision, update=update, actions=(*decision.actions, record))


REOPENABLE = frozenset({VerificationStatus.FAILED, VerificationStatus.TIMED_OUT})


def reopened(
    stored: StoredVerification,
    to_status: VerificationStatus,
    now: datetime,
    policy: PollPolicy,
) -> Decision:
    """An operator re-opens a `failed` or `timed_out` verification: polled again from now on.

    Its own transition and event (reason operator_retry), counters reset, and a
    fresh maximum age. `to_status` is where it goes back to (the status before
    it ended, or `pending`); ValueError for anything else.
    """
    if stored.status not in REOPENABLE:
        raise ValueError(
            f"only failed or timed_out verifications can be re-opened, not {stored.status}"
        )
    if to_status.is_terminal:
        raise ValueError(f"a re-opened verification must be polled, not {to_status}")
    decision = _transition(
        stored,
        now,
        to_status=to_status,
        provider_status=stored.provider_status,
        reason=TransitionReason.OPERATOR_RETRY,
        polled=False,
        policy=policy,
        rng=random.Random(0),
    )
    return dataclass_replace(decision, update=dataclass_replace(decision.update, next_poll_at=now))


def usable_related_id(related_id: str | None) -> str | None:
    """A provider-supplied id is input like any other: only a plain token is followed."""
    if related_id is None:
        return None
    try:
        return validate_external_id(related_id)
    except InvalidExternalIdError:
        return None


# -- storable text and payloads ---------------------------------------------------------


def clean_text(value: str | None, limit: int) -> str | None:
    """Provider text fit for any database: no NUL, no lone surrogates, at most `limit` chars."""
    if value is None:
        return None
    return _clean_string(value)[:limit]


def _clean_string(value: str) -> str:
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def storable(document: dict[str, Any], policy: PollPolicy) -> dict[str, Any]:
    """`document` made storable: NULs and lone surrogates removed, size capped.

    PostgreSQL's jsonb refuses \\u0000 and invalid UTF-8; a huge answer would
    bloat every row it is written to. A too-large response is replaced by a
    marker with its size; the summary (small, ours) is kept.
    """
    try:
        # allow_nan=False: NaN/Infinity are not JSON; a database would refuse the whole batch.
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (RecursionError, ValueError, TypeError):
        # Deeper than the encoder goes (the transport's depth limit stops this earlier),
        # or not JSON at all (NaN, Infinity: the transport refuses those too).
        return {"response": {"_omitted": "unserializable"}, "summary": {}}
    try:
        encoded = text.encode("utf-8")
        suspicious = "\\u0000" in text
    except UnicodeEncodeError:
        encoded, suspicious = b"", True
    if suspicious:
        document = _clean_value(document)
        encoded = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    if len(encoded) > policy.max_stored_payload_bytes:
        summary = document.get("summary")
        return {
            "response": {"_omitted": "too_large", "bytes": len(encoded)},
            "summary": summary if isinstance(summary, dict) else {},
        }
    return document


def _clean_value(value: Any) -> Any:
    """A copy of a JSON value with every string cleaned (iterative: any depth is safe)."""
    if isinstance(value, str):
        return _clean_string(value)
    if not isinstance(value, dict | list):
        return value
    root: Any = {} if isinstance(value, dict) else []
    stack: list[tuple[Any, Any]] = [(value, root)]
    while stack:
        source, target = stack.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in items:
            if isinstance(item, dict | list):
                copy: Any = {} if isinstance(item, dict) else []
                stack.append((item, copy))
            elif isinstance(item, str):
                copy = _clean_string(item)
            else:
                copy = item
            if isinstance(target, dict):
                target[_clean_string(str(key))] = copy
            else:
                target.append(copy)
    return root


def due_after(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=max(seconds, 0.0))
