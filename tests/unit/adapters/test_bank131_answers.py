"""Bank131 answers read without a server: an error body speaks for the verification only
when its code is one Bank131 documents; any other non-2xx means what its HTTP status means."""

from __future__ import annotations

import json

import pytest

from worker.adapters.bank131 import Bank131Adapter, Bank131Settings
from worker.adapters.contract import ProviderResponse
from worker.domain.errors import (
    PermanentProviderError,
    ProviderUnavailableError,
    TransientProviderError,
)
from worker.domain.statuses import VerificationStatus


def adapter() -> Bank131Adapter:
    return Bank131Adapter(Bank131Settings(base_url="https://kyc.example", project="p"))


def error_answer(status: int, code: str) -> ProviderResponse:
    body = {"status": "error", "error": {"code": code, "description": "x"}}
    return ProviderResponse(status, {}, json.dumps(body).encode())


@pytest.mark.parametrize(
    ("status", "error_class", "code"),
    [
        (401, ProviderUnavailableError, "auth_failed"),  # a wrong key, in Bank131's words
        (403, ProviderUnavailableError, "auth_failed"),
        (400, PermanentProviderError, "http_error"),
        (404, PermanentProviderError, "not_found"),
    ],
)
def test_an_undocumented_error_code_falls_back_to_the_http_status(status, error_class, code):
    with pytest.raises(error_class) as info:
        adapter().interpret(error_answer(status, "something_new"))
    assert info.value.code == code


def test_a_documented_error_code_still_decides_on_a_4xx():
    result = adapter().interpret(error_answer(422, "passport_validation_failure"))
    assert result.status is VerificationStatus.REJECTED


def test_an_undocumented_error_code_on_a_2xx_is_an_unknown_status():
    with pytest.raises(TransientProviderError) as info:
        adapter().interpret(error_answer(200, "something_new"))
    assert info.value.code == "unknown_status"
