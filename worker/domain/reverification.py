"""When an approval must be verified again, and how it is watched until then.

Some providers say an approval does not last: gu1 gives `expiresAt` and a
`needsReverification` flag ("Verifications may expire after a certain period
(typically 1 year). Check needsReverification and prompt customers to reverify").
kyc-poller keeps them, and emits one `verification.reverification_due` event when
the flag turns true or the date is reached; the status stays `approved`.

- An approval's re-verification time (`approval_expiry`) is its expiry date, or
  now when the provider already says it needs re-verification. GUESS: facts on any
  other status are not about the approval (gu1's pending sessions expire too: that
  is the session's `expired` status) and are not read.
- An approval with such a time is *watched*: checked again every
  `reverification_check_seconds` (±10 %), never later than the time itself
  (`next_check`; 0 checks only at the time). One without stays terminal, unpolled.
- A check that brings a later date moves the time (the person verified again);
  a check that brings no date keeps the known one (GUESS: absence is not an extension).
- The date reached is due whatever the check gave (an error, an open circuit): the
  date is the provider's, known already. After the event the row is no longer polled.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from enum import StrEnum

from worker.domain.results import ReverificationFacts

PACE_JITTER = 0.1


class Trigger(StrEnum):
    """Why re-verification is due (`reverification.trigger` in the event)."""

    NEEDS_REVERIFICATION = "needs_reverification"  # the provider's flag is true
    EXPIRED = "expired"  # the expiry date is reached


def approval_expiry(facts: ReverificationFacts | None, now: datetime) -> datetime | None:
    """When an approval with these facts needs re-verification (None: it does not say)."""
    if facts is None:
        return None
    if facts.needs_reverification:
        return now
    return facts.expires_at


def next_check(
    now: datetime, expires_at: datetime, pace_seconds: float, rng: random.Random
) -> datetime:
    """The next check of a watched approval: the pace (jittered), never after the expiry."""
    if expires_at <= now:
        return now
    if pace_seconds <= 0:
        return expires_at
    pace = pace_seconds * rng.uniform(1 - PACE_JITTER, 1 + PACE_JITTER)
    return min(now + timedelta(seconds=max(pace, 1.0)), expires_at)


def due_trigger(
    facts: ReverificationFacts | None, expires_at: datetime, now: datetime
) -> Trigger | None:
    """Whether a watched approval is due now, given a fresh answer's facts (None: no answer)."""
    if facts is not None and facts.needs_reverification:
        return Trigger.NEEDS_REVERIFICATION
    if expires_at <= now:
        return Trigger.EXPIRED
    return None
