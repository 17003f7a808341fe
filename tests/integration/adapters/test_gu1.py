"""gu1 specifics: the decision summary from either documented shape, without personal data."""

from __future__ import annotations

import json

import pytest

from devkit.fake_providers import gu1 as fake
from worker.domain.statuses import VerificationStatus


def poll(fake_providers, new_session_id, make_adapter, step):
    session_id = new_session_id("gu1")
    fake_providers.add_session("gu1", session_id, [step])
    return make_adapter("gu1").fetch_status(session_id, None)


APPROVED = {
    "document_authenticity": "pass",
    "face_match": "pass",
    "liveness": "pass",
    "aml": "clear",
}
REJECTED = {
    "document_authenticity": "fail",
    "face_match": "fail",
    "liveness": "pass",
    "aml": "match",
}
REJECTED_WARNINGS = ["DOCUMENT_TAMPERED", "LOW_FACE_MATCH_SIMILARITY", "POSSIBLE_MATCH_FOUND"]


@pytest.mark.parametrize("shape", ["overview", "features", "both"])
def test_approved_summary_in_every_shape(fake_providers, new_session_id, make_adapter, shape):
    step = {"status": "approved", "decision": shape}
    result = poll(fake_providers, new_session_id, make_adapter, step)
    assert result.status is VerificationStatus.APPROVED
    assert {key: result.summary.get(key) for key in APPROVED} == APPROVED
    assert result.summary["warnings"] == []


@pytest.mark.parametrize("shape", ["overview", "features", "both"])
def test_rejected_summary_in_every_shape(fake_providers, new_session_id, make_adapter, shape):
    step = {"status": "rejected", "decision": shape}
    result = poll(fake_providers, new_session_id, make_adapter, step)
    assert result.status is VerificationStatus.REJECTED
    assert {key: result.summary.get(key) for key in REJECTED} == REJECTED
    # Top-level risk codes and the features' warning codes, merged without duplicates.
    assert result.summary["warnings"] == REJECTED_WARNINGS


def test_feature_scores_are_kept(fake_providers, new_session_id, make_adapter):
    result = poll(fake_providers, new_session_id, make_adapter, {"status": "approved"})
    assert result.summary["scores"] == {"face_match": 97.4, "liveness": 99.1}


def test_in_review_features_read_as_review(fake_providers, new_session_id, make_adapter):
    step = {"status": "in_review", "decision": "features", "warnings": []}
    result = poll(fake_providers, new_session_id, make_adapter, step)
    assert result.status is VerificationStatus.IN_REVIEW
    assert result.summary["aml"] == "review"
    assert result.summary["document_authenticity"] == "pass"
    # Feature warnings count even when there are no top-level risk codes.
    assert result.summary["warnings"] == ["POSSIBLE_MATCH_FOUND"]


def test_array_aliases_alone_are_read(fake_providers, new_session_id, make_adapter):
    decision = {
        "id_verifications": [{"status": "Approved", "document_number": fake.DOCUMENT_NUMBER}],
        "face_matches": [{"status": "Declined", "score": 12.5, "warnings": ["LOW_SIMILARITY"]}],
        "liveness_checks": [{"status": "Approved", "score": 88}],
        "aml_screenings": [{"status": "Declined", "warnings": [{"risk": "SANCTIONS_HIT"}]}],
        "ip_analyses": [{"ip_address": fake.IP_ADDRESS, "warnings": [{"risk": "VPN_DETECTED"}]}],
    }
    step = {"status": "rejected", "decision": decision, "warnings": ["LOW_SIMILARITY"]}
    result = poll(fake_providers, new_session_id, make_adapter, step)
    assert result.summary == {
        "document_authenticity": "pass",
        "face_match": "fail",
        "liveness": "pass",
        "aml": "match",
        "scores": {"face_match": 12.5, "liveness": 88},
        "warnings": ["LOW_SIMILARITY", "SANCTIONS_HIT", "VPN_DETECTED"],
    }


def test_free_text_in_warnings_and_results_is_not_copied(
    fake_providers, new_session_id, make_adapter
):
    decision = {
        "documentAuthenticity": f"name {fake.FIRST_NAME} does not match document",
        "faceMatch": "pass",
        "id_verification": {"status": "Declined", "warnings": [{"short_description": "x"}]},
    }
    warnings = [f"Name {fake.FIRST_NAME} {fake.LAST_NAME} mismatch", "NAME_MISMATCH"]
    step = {"status": "rejected", "decision": decision, "warnings": warnings}
    result = poll(fake_providers, new_session_id, make_adapter, step)
    assert result.summary["document_authenticity"] == "fail"  # from the feature block instead
    assert result.summary["face_match"] == "pass"
    assert result.summary["warnings"] == ["NAME_MISMATCH"]
    assert fake.FIRST_NAME not in json.dumps(result.summary)


@pytest.mark.parametrize("status", ["approved", "rejected", "in_review"])
@pytest.mark.parametrize("shape", ["overview", "features", "both"])
def test_summary_has_no_personal_data(fake_providers, new_session_id, make_adapter, status, shape):
    result = poll(
        fake_providers, new_session_id, make_adapter, {"status": status, "decision": shape}
    )
    stored, summary = json.dumps(result.payload), json.dumps(result.summary)
    assert result.payload["extractedData"]["documentNumber"] == fake.DOCUMENT_NUMBER
    for value in fake.PERSONAL_VALUES:
        assert value not in summary
    if shape != "overview":
        for value in fake.PERSONAL_VALUES:
            assert value in stored


def test_pending_has_no_decision_yet(fake_providers, new_session_id, make_adapter):
    result = poll(fake_providers, new_session_id, make_adapter, "pending")
    assert result.payload["decision"] is None
    assert result.summary == {"warnings": []}
