"""The adapting safety net's rule: when a provider's waits stretch, and by how much."""

from __future__ import annotations

import random

import pytest

from worker.domain.safety_net import (
    HintRecord,
    Reason,
    SafetyNetError,
    SafetyNetSettings,
    assess,
    stretched_wait,
    was_hinted,
)
from worker.domain.schedule import DEFAULT_PLAN, next_poll_delay
from worker.domain.statuses import VerificationStatus as S

SETTINGS = SafetyNetSettings(
    factor=4.0, share=0.8, window=10, min_transitions=5, silence_seconds=60
)
NOW = 10_000.0


def record(hinted: int, unhinted: int, **kwargs) -> HintRecord:
    return HintRecord(recent=(True,) * hinted + (False,) * unhinted, **kwargs)


def test_stretched_only_with_enough_transitions_and_a_high_enough_share():
    assert assess(record(4, 0, last_hint_at=NOW), SETTINGS).reason is Reason.TOO_FEW_TRANSITIONS
    assert assess(record(7, 3, last_hint_at=NOW), SETTINGS).reason is Reason.SHARE_BELOW
    state = assess(record(8, 2, last_hint_at=NOW), SETTINGS)
    assert state.stretched and state.share == pytest.approx(0.8) and state.transitions == 10
    assert state.factor(SETTINGS) == 4.0


def test_only_the_window_counts_newest_first():
    # 10 hinted in the window, 10 older unhinted ones beyond it: stretched.
    old_failures = HintRecord(recent=(True,) * 10 + (False,) * 10, last_hint_at=NOW)
    assert assess(old_failures, SETTINGS).stretched
    # The hints stopped 3 transitions ago: 7/10 in the window is below the share.
    stopped = HintRecord(recent=(False,) * 3 + (True,) * 7, last_hint_at=NOW)
    assert assess(stopped, SETTINGS).reason is Reason.SHARE_BELOW


def test_silence_while_polls_still_find_changes_returns_to_normal_at_once():
    hinted = record(10, 0, last_hint_at=NOW - 61, last_unhinted_at=NOW)
    state = assess(hinted, SETTINGS)
    assert not state.stretched and state.reason is Reason.HINTS_STOPPED
    # Quiet but nothing found either (a night without changes): still stretched.
    quiet = record(10, 0, last_hint_at=NOW - 3600)
    assert assess(quiet, SETTINGS).stretched
    # An unhinted change before the last hint: the hints came back since.
    came_back = record(10, 0, last_hint_at=NOW - 61, last_unhinted_at=NOW - 100)
    assert assess(came_back, SETTINGS).stretched
    # An unhinted change in the same batch as the last hints is no silence.
    same_batch = record(10, 0, last_hint_at=NOW - 3600, last_unhinted_at=NOW - 3600)
    assert assess(same_batch, SETTINGS).stretched
    # Silence shorter than the setting: not yet.
    recent = record(10, 0, last_hint_at=NOW - 30, last_unhinted_at=NOW - 5)
    assert assess(recent, SETTINGS).stretched


def test_factor_one_turns_it_off():
    off = SafetyNetSettings(factor=1.0, share=0.8, window=10, min_transitions=5)
    state = assess(record(10, 0, last_hint_at=NOW), off)
    assert not state.stretched and state.reason is Reason.OFF and state.factor(off) == 1.0


def test_a_transition_is_hinted_by_a_hint_during_the_status_it_left():
    assert was_hinted(100.0, status_since=100.0)
    assert not was_hinted(99.9, status_since=100.0)  # a hint for an earlier status
    assert not was_hinted(None, status_since=0.0)


def test_a_stretched_wait_never_passes_the_max_gap_nor_shrinks():
    assert stretched_wait(100.0, 4.0, 1800.0) == 400.0
    assert stretched_wait(600.0, 4.0, 1800.0) == 1800.0
    assert stretched_wait(3600.0, 4.0, 1800.0) == 3600.0  # not this rule's wait
    assert stretched_wait(100.0, 1.0, 1800.0) == 100.0


@pytest.mark.parametrize("status", [S.PENDING, S.IN_PROGRESS, S.RETRY, S.IN_REVIEW])
def test_the_schedule_stretches_within_each_status_max_gap(status):
    rng = random.Random(5)
    cap = DEFAULT_PLAN.max_gap(status)
    for elapsed in (0.0, 200.0, 2000.0, 4000.0, 30000.0, 100000.0):
        plain = next_poll_delay(DEFAULT_PLAN, "gu1", status, elapsed, random.Random(1))
        stretched = next_poll_delay(DEFAULT_PLAN, "gu1", status, elapsed, random.Random(1), 4.0)
        assert stretched == pytest.approx(min(plain * 4.0, cap))
        assert plain <= stretched <= cap
    assert next_poll_delay(DEFAULT_PLAN, "gu1", status, 0.0, rng, 100.0) <= cap


@pytest.mark.parametrize(
    "kwargs",
    [
        {"factor": 0.5},
        {"factor": 101.0},
        {"share": 0.0},
        {"share": 1.5},
        {"window": 0},
        {"window": 10, "min_transitions": 11},
        {"silence_seconds": 0.0},
        {"silence_seconds": float("inf")},
    ],
)
def test_settings_out_of_range_are_refused(kwargs):
    with pytest.raises(SafetyNetError):
        SafetyNetSettings(**kwargs)
