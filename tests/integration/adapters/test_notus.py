"""Notus specifics: the answer is kept whole, the summary holds no personal data."""

from __future__ import annotations

import json

from devkit.fake_providers import notus as fake
from worker.domain.statuses import VerificationStatus


def test_payload_is_the_whole_answer_and_summary_has_no_personal_data(
    fake_providers, new_session_id, make_adapter
):
    session_id = new_session_id("notus")
    fake_providers.add_session("notus", session_id, ["COMPLETED"])
    result = make_adapter("notus").fetch_status(session_id, None)
    assert result.status is VerificationStatus.APPROVED
    assert result.payload["session"]["id"] == session_id
    stored = json.dumps(result.payload)
    summary = json.dumps(result.summary)
    for value in fake.PERSONAL_VALUES:
        assert value in stored
        assert value not in summary
    assert result.summary["liveness_required"] is True
    assert result.summary["document_type"] == fake.DOCUMENT_TYPE
    assert result.summary["document_category"] == fake.DOCUMENT_CATEGORY
    assert result.summary["created_at"] == fake.CREATED_AT
    assert "updated_at" in result.summary
    assert result.summary["individual_id"] == fake.INDIVIDUAL_ID
    assert set(result.summary) == {
        "individual_id",
        "liveness_required",
        "document_type",
        "document_category",
        "created_at",
        "updated_at",
    }
    assert (result.error_code, result.related_external_id) == (None, None)


def test_ids_with_reserved_url_characters_are_quoted_and_still_reach_the_session(
    fake_providers, make_adapter
):
    session_id = "sess:1.a_b-c"
    fake_providers.add_session("notus", session_id, ["VERIFYING"])
    result = make_adapter("notus").fetch_status(session_id, None)
    assert result.status is VerificationStatus.IN_REVIEW
    assert fake_providers.request_count("notus", session_id) == 1


def test_a_session_before_completion_has_no_individual_id_and_keeps_its_liveness_flag(
    fake_providers, new_session_id, make_adapter
):
    # Fixture: notus.txt's example answer (PENDING, livenessRequired) as the fake renders it.
    session_id = new_session_id("notus")
    fake_providers.add_session(
        "notus", session_id, [{"status": "VERIFYING", "liveness_required": False}]
    )
    result = make_adapter("notus").fetch_status(session_id, None)
    assert result.status is VerificationStatus.IN_REVIEW
    assert "individual_id" not in result.summary
    assert result.summary["liveness_required"] is False
