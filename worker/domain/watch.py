"""The rule for a watched approval's check (see `worker.domain.reverification`).

`decide_watch(stored, observation, now, policy, rng)` is `decide`'s twin for an
approval that is watched until its re-verification time. It never changes the
status (a terminal status is final: a provider word that now means something
else is recorded in `provider_status`, and the engine logs it) and never counts
towards `failed` or `timed_out`; it moves the re-verification time when the provider moves it, and
when re-verification is due it writes the one `verification.reverification_due`
event (through the outbox, with the row's version + 1) and stops the watch.
The stored answer (`result`) is left as it is: a check must not put back
personal data that retention removed.
"""

from __future__ import annotations

import random
from datetime import datetime

from worker.domain.decisions import (
    MAX_ERROR_TEXT,
    MAX_PROVIDER_STATUS,
    Decision,
    Deferred,
    Observation,
    Outcome,
    PollPolicy,
    RowUpdate,
    StoredVerification,
    clean_text,
    storable,
)
from worker.domain.errors import ErrorCode, ProviderError
from worker.domain.events import ReverificationDue, build_reverification_event
from worker.domain.results import PollResult
from worker.domain.reverification import due_trigger, next_check


def decide_watch(
    stored: StoredVerification,
    observation: Observation,
    now: datetime,
    policy: PollPolicy,
    rng: random.Random,
) -> Decision:
    """The decision for one check of a watched approval (`stored.watched` must hold)."""
    if not stored.watched or stored.expires_at is None:
        raise ValueError("only a watched approval is decided by decide_watch")
    expires_at = stored.expires_at
    facts = None
    summary: dict[str, object] = {}
    provider_status = stored.provider_status
    if isinstance(observation, PollResult | ProviderError) and observation.provider_status:
        provider_status = clean_text(observation.provider_status, MAX_PROVIDER_STATUS)
    if isinstance(observation, PollResult):
        facts = observation.reverification
        if facts is not None and facts.expires_at is not None:
            expires_at = facts.expires_at
        cleaned = storable({"summary": observation.summary}, policy).get("summary")
        summary = cleaned if isinstance(cleaned, dict) else {}
    polled = not isinstance(observation, Deferred)
    error = observation if isinstance(observation, ProviderError) else None
    trigger = due_trigger(facts, expires_at, now)
    if trigger is not None:
        next_at = None
    elif isinstance(observation, Deferred):
        next_at = max(observation.until, now)
    else:
        next_at = next_check(now, expires_at, policy.reverification_check_seconds, rng)
    update = RowUpdate(
        status=stored.status,
        provider_status=provider_status,
        poll_attempts=stored.poll_attempts + (1 if polled else 0),
        error_count=stored.error_count + 1 if error is not None else 0,
        permanent_error_count=stored.permanent_error_count,
        total_polls=stored.total_polls + (1 if polled else 0),
        last_error=_last_error(observation),
        last_error_code=_last_code(observation),
        last_polled_at=now if polled else None,
        next_poll_at=next_at,
        finished_at=stored.finished_at,
        updated_at=now,
        expires_at=expires_at,
        reverification_event_at=now if trigger is not None else None,
    )
    event = None
    if trigger is not None:
        event = build_reverification_event(
            ReverificationDue(
                verification_id=stored.id,
                verification_version=stored.version + 1,
                provider=stored.provider,
                external_id=stored.external_id,
                verification_type=stored.verification_type,
                status=stored.status.value,
                provider_status=provider_status,
                trigger=trigger.value,
                expires_at=expires_at,
                occurred_at=now,
                summary=summary,
            )
        )
    outcome = Outcome.UNCHANGED
    if error is not None:
        outcome = Outcome.ERROR
    elif isinstance(observation, Deferred):
        outcome = Outcome.DEFERRED
    return Decision(stored, outcome, update, event=event, error=error)


def _last_error(observation: Observation) -> str | None:
    if isinstance(observation, ProviderError):
        return clean_text(observation.message, MAX_ERROR_TEXT)
    if isinstance(observation, Deferred):
        return observation.message
    return None


def _last_code(observation: Observation) -> ErrorCode | None:
    if isinstance(observation, ProviderError | Deferred):
        return observation.code
    return None
