"""The adapting safety net: a provider's polls stretch while its hints arrive (issue 16, item 4).

A hint (a signed webhook, a status-stream message) makes us poll a verification at once;
the schedule stays as the safety net for the hints that never come. While a provider's
hints do arrive, that net may be coarser: its waits stretch by `factor`.

The rule, per provider, over its last `window` transitions found by polls (each flagged
"a hint came for it while it was in the status it left", `was_hinted`):
- **stretched** when at least `min_transitions` are in the window and at least `share` of
  them were hinted, and the hints have not stopped;
- **the hints stopped** when a poll found a change without a hint `silence_seconds` or
  more after the provider's last hint: back to normal at once, without waiting for the
  window to fill with unhinted transitions (that also happens, and also turns it back);
- otherwise **normal**: the waits of polling alone, exactly.

Invariant (the meaning kyc-poller gives "nothing is found later than polling alone would
find it"): a stretched wait never exceeds the status's maximum gap
(`SchedulePlan.max_gap`, `KYC_POLL_MAX_GAP_<STATUS>`), the promise the schedule already
makes ("no decision waits longer than it to be seen"). A change whose hint is lost while
stretched is seen within that gap; one found while normal is seen exactly when polling alone
would see it. A literal "never later than the unstretched schedule" would forbid any
stretch: a stretched net's polls are a polling schedule, and the simulator prints what that
costs (README, "The safety net adapts").

Pure: `assess(record, settings)` is a function of what the fleet recorded (its times);
`worker.services.safety_net` keeps the record in Redis and applies the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

MAX_FACTOR = 100.0
MAX_WINDOW = 10_000


class SafetyNetError(ValueError):
    """A setting of the safety net is out of range (raised at start)."""


@dataclass(frozen=True)
class SafetyNetSettings:
    """`factor` 1 turns stretching off; defaults GUESS (simulator, README)."""

    factor: float = 5.0  # KYC_HINT_STRETCH_FACTOR
    share: float = 0.8  # KYC_HINT_SHARE
    window: int = 50  # KYC_HINT_WINDOW (transitions)
    min_transitions: int = 20  # KYC_HINT_MIN_TRANSITIONS
    silence_seconds: float = 900.0  # KYC_HINT_SILENCE_SECONDS

    def __post_init__(self) -> None:
        if not 1.0 <= self.factor <= MAX_FACTOR:
            raise SafetyNetError(f"the stretch factor must be in [1, {MAX_FACTOR:g}]")
        if not 0.0 < self.share <= 1.0:
            raise SafetyNetError("the hinted share must be in (0, 1]")
        if not 1 <= self.window <= MAX_WINDOW:
            raise SafetyNetError(f"the window must be 1..{MAX_WINDOW} transitions")
        if not 1 <= self.min_transitions <= self.window:
            raise SafetyNetError("the minimum sample must be 1..window transitions")
        if not (self.silence_seconds > 0 and math.isfinite(self.silence_seconds)):
            raise SafetyNetError("the silence must be a positive number of seconds")

    @property
    def enabled(self) -> bool:
        return self.factor > 1.0


@dataclass(frozen=True)
class HintRecord:
    """What the fleet recorded of one provider's hints (Unix seconds)."""

    recent: tuple[bool, ...] = ()  # newest first: was each transition hinted
    last_hint_at: float | None = None
    last_unhinted_at: float | None = None  # the latest transition a poll found unhinted


class Reason(StrEnum):
    HINTS_ARRIVE = "hints_arrive"
    OFF = "off"
    TOO_FEW_TRANSITIONS = "too_few_transitions"
    SHARE_BELOW = "share_below"
    HINTS_STOPPED = "hints_stopped"


@dataclass(frozen=True)
class NetState:
    stretched: bool
    share: float  # hinted share of the window; 0 when it is empty
    transitions: int  # in the window
    reason: Reason

    def factor(self, settings: SafetyNetSettings) -> float:
        return settings.factor if self.stretched else 1.0


@dataclass(frozen=True)
class FoundTransition:
    """A transition a poll found: its provider, verification and when its old status began."""

    provider: str
    verification_id: int
    status_since: float  # Unix seconds


def was_hinted(hint_at: float | None, status_since: float) -> bool:
    """A transition was preceded by a hint if one came while the verification was in the
    status it left (from when kyc-poller saw that status begin)."""
    return hint_at is not None and hint_at >= status_since


def hints_stopped(record: HintRecord, settings: SafetyNetSettings) -> bool:
    """A poll found a change with no hint, `silence_seconds` or more after the last hint:
    no hint for that long while polls still find changes. (A quiet spell with no change
    found at all is not a stop: nothing happened that a hint could have announced.)"""
    unhinted = record.last_unhinted_at
    if unhinted is None:
        return False
    last_hint = record.last_hint_at
    return last_hint is None or unhinted - last_hint >= settings.silence_seconds


def assess(record: HintRecord, settings: SafetyNetSettings) -> NetState:
    """Whether the provider's waits stretch now, and why (the record's times say when)."""
    window = record.recent[: settings.window]
    transitions = len(window)
    share = sum(window) / transitions if transitions else 0.0
    if not settings.enabled:
        return NetState(False, share, transitions, Reason.OFF)
    if transitions < settings.min_transitions:
        return NetState(False, share, transitions, Reason.TOO_FEW_TRANSITIONS)
    if hints_stopped(record, settings):
        return NetState(False, share, transitions, Reason.HINTS_STOPPED)
    if share < settings.share:
        return NetState(False, share, transitions, Reason.SHARE_BELOW)
    return NetState(True, share, transitions, Reason.HINTS_ARRIVE)


def stretched_wait(wait: float, factor: float, max_gap: float) -> float:
    """`wait` stretched by `factor`, never past `max_gap` (nor shortened: a wait already
    longer than the gap, e.g. an error's backoff, is not this rule's)."""
    if factor <= 1.0:
        return wait
    return max(min(wait * factor, max_gap), wait)
