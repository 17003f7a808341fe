"""gu1 specifics: the decision summary from either documented shape, without personal data."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from devkit.fake_providers import gu1 as fake
from worker.domain.results import ReverificationFacts
from worker.domain.statuses import VerificationStatus
from worker.domain.sync import SyncAttempt


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
# What every fake validation says besides its decision (the names of verified fields only).
DECIDED_FACTS = {
    "entity_id": fake.ENTITY_ID,
    "is_current": True,
    "needs_reverification": False,
    "verified_fields": ["firstName", "lastName", "dateOfBirth"],
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
        **DECIDED_FACTS,
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
    assert result.summary == {
        "warnings": [],
        "entity_id": fake.ENTITY_ID,
        "is_current": True,
        "needs_reverification": False,
        "verified_fields": [],
    }
    assert result.reverification == ReverificationFacts(needs_reverification=False)


def test_an_approval_that_expires_carries_its_facts(fake_providers, new_session_id, make_adapter):
    # Fixture: gu1.txt / check-status: a validation carries needsReverification and expiresAt.
    step = {"status": "approved", "expires_at": "2027-11-24T12:00:00.000Z"}
    result = poll(fake_providers, new_session_id, make_adapter, step)
    expected = datetime(2027, 11, 24, 12, 0, tzinfo=UTC)
    assert result.reverification == ReverificationFacts(False, expected)
    assert result.summary["expires_at"] == expected.isoformat()
    assert result.summary["needs_reverification"] is False


def test_the_flag_alone_is_a_fact_and_an_unreadable_date_is_left_out(
    fake_providers, new_session_id, make_adapter
):
    step = {"status": "approved", "needs_reverification": True, "expires_at": "next year"}
    result = poll(fake_providers, new_session_id, make_adapter, step)
    assert result.reverification == ReverificationFacts(needs_reverification=True)
    assert "expires_at" not in result.summary


def test_a_date_without_a_zone_is_read_as_utc(fake_providers, new_session_id, make_adapter):
    step = {"status": "approved", "expires_at": "2027-01-02T03:04:05"}
    result = poll(fake_providers, new_session_id, make_adapter, step)
    assert result.reverification is not None
    assert result.reverification.expires_at == datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_a_sync_is_posted_with_force_and_the_next_poll_sees_its_effect(
    fake_providers, new_session_id, make_adapter
):
    # Fixture: check-status "Sync Validation Status": POST .../{id}/sync {"force": true}.
    session_id = new_session_id("gu1")
    fake_providers.add_session(
        "gu1", session_id, [{"status": "in_progress", "after_sync": "approved"}]
    )
    adapter = make_adapter("gu1")
    assert adapter.supports_sync
    request = adapter.build_sync_request(session_id, None)
    assert (request.method, request.body) == ("POST", b'{"force":true}')
    assert request.url.endswith(f"/api/kyc/validations/{session_id}/sync")
    assert adapter.fetch_status(session_id, None).status is VerificationStatus.IN_PROGRESS
    attempt = adapter.client.loop.run(
        adapter.adapter.request_sync(adapter.client.transport, session_id, None), timeout=10
    )
    assert attempt == SyncAttempt("accepted", 200, "in_progress")
    assert fake_providers.sync_count("gu1", session_id) == 1
    assert adapter.fetch_status(session_id, None).status is VerificationStatus.APPROVED


def test_a_sync_of_an_unknown_validation_is_an_outcome_not_an_exception(
    fake_providers, make_adapter
):
    adapter = make_adapter("gu1")
    attempt = adapter.client.loop.run(
        adapter.adapter.request_sync(adapter.client.transport, "val-nobody", None), timeout=10
    )
    assert attempt == SyncAttempt("not_found", 404)


def test_providers_without_a_sync_endpoint_ask_for_none(make_adapter):
    for provider in ("notus", "bank131", "predicate"):
        adapter = make_adapter(provider)
        assert not adapter.supports_sync
        assert adapter.build_sync_request("550e8400-e29b-41d4-a716-446655440000", None) is None
