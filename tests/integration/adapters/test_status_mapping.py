"""Every documented (or guessed) status word of every provider maps to the right status."""

from __future__ import annotations

import pytest

from worker.domain.statuses import VerificationStatus as S

CASES = [
    # Notus (GUESS vocabulary, case-insensitive)
    ("notus", "PENDING", S.PENDING),
    ("notus", "IN_PROGRESS", S.IN_PROGRESS),
    ("notus", "IN_REVIEW", S.IN_REVIEW),
    ("notus", "RESUBMISSION_REQUESTED", S.RETRY),
    ("notus", "APPROVED", S.APPROVED),
    ("notus", "REJECTED", S.REJECTED),
    ("notus", "DECLINED", S.REJECTED),
    ("notus", "EXPIRED", S.EXPIRED),
    ("notus", "ABANDONED", S.ABANDONED),
    ("notus", "CANCELLED", S.CANCELLED),
    ("notus", "CANCELED", S.CANCELLED),
    ("notus", "approved", S.APPROVED),
    ("notus", "In_Review", S.IN_REVIEW),
    # Bank131
    ("bank131", "ok", S.APPROVED),
    ("bank131", "pending", S.IN_PROGRESS),
    ("bank131", "error:passport_validation_failure", S.REJECTED),
    ("bank131", "error:inn_validation_failure", S.REJECTED),
    ("bank131", "error:already_exists", S.CANCELLED),
    # gu1 (documented, 1:1)
    ("gu1", "pending", S.PENDING),
    ("gu1", "in_progress", S.IN_PROGRESS),
    ("gu1", "in_review", S.IN_REVIEW),
    ("gu1", "approved", S.APPROVED),
    ("gu1", "rejected", S.REJECTED),
    ("gu1", "expired", S.EXPIRED),
    ("gu1", "abandoned", S.ABANDONED),
    ("gu1", "cancelled", S.CANCELLED),
    # Predicate (documented)
    ("predicate", "pending", S.PENDING),
    ("predicate", "submitted", S.IN_REVIEW),
    ("predicate", "completed", S.APPROVED),
    ("predicate", "rejected", S.REJECTED),
    ("predicate", "retry", S.RETRY),
]


@pytest.mark.parametrize(("provider", "word", "expected"), CASES)
def test_status_word_maps_to_normalized_status(
    fake_providers, new_session_id, make_adapter, provider, word, expected
):
    session_id = new_session_id(provider)
    fake_providers.add_session(provider, session_id, [word])
    result = make_adapter(provider).fetch_status(session_id, None)
    assert result.status is expected
    assert result.provider_status == word
    assert fake_providers.request_count(provider, session_id) == 1


@pytest.mark.parametrize(
    ("provider", "script", "expected"),
    [
        ("notus", ["PENDING", "IN_REVIEW", "APPROVED"], [S.PENDING, S.IN_REVIEW, S.APPROVED]),
        ("bank131", ["pending", "ok"], [S.IN_PROGRESS, S.APPROVED, S.APPROVED]),
        ("gu1", ["pending", "in_progress", "rejected"], [S.PENDING, S.IN_PROGRESS, S.REJECTED]),
        ("predicate", ["retry", "submitted"], [S.RETRY, S.IN_REVIEW, S.IN_REVIEW]),
    ],
)
def test_successive_polls_follow_the_script_and_the_last_step_repeats(
    fake_providers, new_session_id, make_adapter, provider, script, expected
):
    session_id = new_session_id(provider)
    fake_providers.add_session(provider, session_id, script)
    adapter = make_adapter(provider)
    seen = [adapter.fetch_status(session_id, None).status for _ in expected]
    assert seen == expected
