"""The event's `summary`: the adapter's non-personal details, bounded and float-free."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from worker.domain.cloudevents import to_cloudevent
from worker.domain.decisions import PollPolicy, StoredVerification, decide, timed_out
from worker.domain.events import (
    MAX_SUMMARY_BYTES,
    MAX_SUMMARY_ITEMS,
    MAX_SUMMARY_TEXT,
    SUMMARY_OMITTED,
    event_summary,
)
from worker.domain.results import PollResult
from worker.domain.statuses import VerificationStatus as S

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def floats_in(value: object) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for item in value.values() for f in floats_in(item)]
    if isinstance(value, list):
        return [f for item in value for f in floats_in(item)]
    return []


def test_floats_and_unsafe_integers_become_decimal_strings():
    summary = {"scores": {"face_match": 97.4, "liveness": 99.0}, "big": 2**60, "count": 2}
    assert event_summary(summary) == {
        "scores": {"face_match": "97.4", "liveness": "99.0"},
        "big": str(2**60),
        "count": 2,
    }


def test_sizes_are_bounded():
    wide = {f"k{i}": i for i in range(100)}
    assert len(event_summary(wide)) == MAX_SUMMARY_ITEMS
    assert event_summary({"t": "x" * 1000})["t"] == "x" * MAX_SUMMARY_TEXT
    assert event_summary({"l": list(range(100))})["l"] == list(range(MAX_SUMMARY_ITEMS))
    deep = {"a": {"b": {"c": {"d": 1}}, "keep": 1}}
    assert event_summary(deep) == {"a": {"b": {}, "keep": 1}}
    assert event_summary({1: "not a string key", "": "empty", "ok": True}) == {"ok": True}  # type: ignore[dict-item]
    huge = {f"k{i}": "y" * MAX_SUMMARY_TEXT for i in range(30)}
    assert event_summary(huge) == SUMMARY_OMITTED
    assert len(json.dumps(event_summary({"k": "z" * 150}))) <= MAX_SUMMARY_BYTES
    assert event_summary(None) == {}


def stored(status: S = S.IN_REVIEW) -> StoredVerification:
    return StoredVerification(
        id=1,
        provider="gu1",
        external_id="val-1",
        verification_type=None,
        status=status,
        provider_status=status.value,
        version=2,
        created_at=NOW - timedelta(minutes=5),
    )


def test_a_transition_event_carries_the_answers_summary_in_both_forms():
    answer = PollResult(
        S.APPROVED,
        "approved",
        {"extractedData": {"firstName": "Ada"}},
        summary={"aml": "clear", "scores": {"face_match": 97.4}, "warnings": []},
    )
    decision = decide(stored(), answer, NOW, PollPolicy(), random.Random(1))
    assert decision.event is not None
    assert decision.event["schema_version"] == 1
    assert decision.event["summary"] == {
        "aml": "clear",
        "scores": {"face_match": "97.4"},
        "warnings": [],
    }
    assert floats_in(decision.event) == []
    assert "Ada" not in json.dumps(decision.event)
    assert to_cloudevent(decision.event)["data"]["summary"] == decision.event["summary"]
    # The stored summary keeps the number.
    assert decision.update.result is not None
    assert decision.update.result["summary"]["scores"] == {"face_match": 97.4}


def test_changes_without_an_answer_carry_an_empty_summary():
    decision = timed_out(stored(), NOW, PollPolicy())
    assert decision.event is not None and decision.event["summary"] == {}
