"""Bank131 specifics: error answers are decisions, pointers or failures, by their code."""

from __future__ import annotations

import json

import pytest

from devkit.fake_providers import bank131 as fake
from worker.domain.errors import PermanentProviderError, ProviderUnavailableError
from worker.domain.statuses import VerificationStatus


def poll(fake_providers, new_session_id, make_adapter, script, **overrides):
    session_id = new_session_id("bank131")
    fake_providers.add_session("bank131", session_id, script)
    return session_id, make_adapter("bank131", **overrides).fetch_status(session_id, None)


@pytest.mark.parametrize("code", ["passport_validation_failure", "inn_validation_failure"])
@pytest.mark.parametrize("http_status", [200, 400, 422])
def test_validation_failures_are_rejections_with_the_code(
    fake_providers, new_session_id, make_adapter, code, http_status
):
    script = [{"status": f"error:{code}", "http_status": http_status}]
    _, result = poll(fake_providers, new_session_id, make_adapter, script)
    assert result.status is VerificationStatus.REJECTED
    assert result.provider_status == f"error:{code}"
    assert result.error_code == code
    assert result.related_external_id is None
    assert result.summary["error_code"] == code


@pytest.mark.parametrize("http_status", [200, 409])
def test_already_exists_cancels_and_points_at_the_earlier_check(
    fake_providers, new_session_id, make_adapter, http_status
):
    script = [{"status": "error:already_exists", "earlier_id": "7", "http_status": http_status}]
    _, result = poll(fake_providers, new_session_id, make_adapter, script)
    assert result.status is VerificationStatus.CANCELLED
    assert result.provider_status == "error:already_exists"
    assert result.error_code == "already_exists"
    assert result.related_external_id == "7"
    assert result.summary["earlier_check_id"] == "7"


@pytest.mark.parametrize(
    ("code", "http_status"),
    [
        ("request_not_found", 200),
        ("request_not_found", 404),
        ("partner_project_not_found", 200),
        ("partner_project_not_found", 403),
        ("invalid_sign", 200),
        ("invalid_sign", 401),
    ],
)
def test_failure_codes_are_errors_named_after_the_code(
    fake_providers, new_session_id, make_adapter, code, http_status
):
    """request_not_found is this check's; a wrong project or signature is provider-wide."""
    session_id = new_session_id("bank131")
    fake_providers.add_session(
        "bank131", session_id, [{"status": f"error:{code}", "http_status": http_status}]
    )
    expected = PermanentProviderError if code == "request_not_found" else ProviderUnavailableError
    with pytest.raises(expected) as info:
        make_adapter("bank131").fetch_status(session_id, None)
    error = info.value
    assert (error.code, error.http_status) == (code, http_status)
    assert error.provider_status == f"error:{code}"


def test_an_error_answer_without_a_code_is_malformed(fake_providers, new_session_id, make_adapter):
    session_id = new_session_id("bank131")
    fake_providers.add_session("bank131", session_id, ["error"])  # {"status": "error"}, no code
    with pytest.raises(PermanentProviderError) as info:
        make_adapter("bank131").fetch_status(session_id, None)
    assert info.value.code == "malformed_response"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_both_methods_are_signed_and_accepted(fake_providers, new_session_id, make_adapter, method):
    session_id, result = poll(
        fake_providers, new_session_id, make_adapter, ["pending", "ok"], method=method
    )
    assert result.status is VerificationStatus.IN_PROGRESS
    assert result.summary == {"description": "Check in progress"}
    adapter = make_adapter("bank131", method=method)
    assert adapter.method == method
    assert adapter.fetch_status(session_id, None).status is VerificationStatus.APPROVED
    assert fake_providers.request_count("bank131", session_id) == 2


def test_version_2_0_is_served_with_get_and_answers_the_same_way(
    fake_providers, new_session_id, make_adapter
):
    session_id, result = poll(
        fake_providers, new_session_id, make_adapter, ["pending", "ok"], api_version="v2.0"
    )
    assert result.status is VerificationStatus.IN_PROGRESS
    adapter = make_adapter("bank131", api_version="v2.0")
    assert adapter.method == "GET"
    assert adapter.fetch_status(session_id, None).status is VerificationStatus.APPROVED


def test_version_2_0_is_not_documented_with_post(fake_providers, new_session_id, make_adapter):
    # The fake follows the documents: a POST to v2.0 is refused, so a wrong method fails here.
    overrides = {"api_version": "v2.0", "method": "POST"}
    with pytest.raises(PermanentProviderError) as info:
        poll(fake_providers, new_session_id, make_adapter, ["ok"], **overrides)
    assert info.value.http_status == 405


def test_ok_summary_leaves_the_participant_in_the_payload_only(
    fake_providers, new_session_id, make_adapter
):
    _, result = poll(fake_providers, new_session_id, make_adapter, ["ok"])
    assert result.summary == {"description": "valid"}
    for value in fake.PERSONAL_VALUES:
        assert value in json.dumps(result.payload)
        assert value not in json.dumps(result.summary)
