"""Status tables: sources on every row, case-insensitive lookups, an operator's extra words."""

from __future__ import annotations

import pytest

from worker.adapters.bank131 import Bank131Adapter, Bank131Settings
from worker.adapters.common import ApiKeySettings
from worker.adapters.contract import ProviderResponse
from worker.adapters.notus import NotusAdapter
from worker.adapters.status_table import (
    StatusRow,
    StatusTable,
    documented,
    guessed,
    parse_status_map_extra,
)
from worker.config import Settings
from worker.domain.errors import ConfigurationError, ErrorCode, TransientProviderError
from worker.domain.statuses import VerificationStatus as S

TABLE = StatusTable(
    "acme",
    {"done": documented(S.APPROVED, "acme.txt"), "wait": guessed(S.PENDING, "sounds like it")},
)


def test_lookups_fold_case_and_unknown_words_are_unknown_status():
    assert TABLE.lookup("DONE") is S.APPROVED
    assert TABLE.lookup("Wait") is S.PENDING
    with pytest.raises(TransientProviderError) as info:
        TABLE.lookup("Vanished")
    assert info.value.code is ErrorCode.UNKNOWN_STATUS
    assert info.value.provider_status == "Vanished"


def test_a_row_without_a_source_is_refused():
    with pytest.raises(ValueError, match="source"):
        StatusRow(S.APPROVED, " ")
    with pytest.raises(ValueError, match="source"):
        guessed(S.APPROVED, "")
    assert guessed(S.APPROVED, "why").guessed and not documented(S.APPROVED, "x.txt").guessed


def test_two_words_folding_to_one_key_are_refused():
    with pytest.raises(ValueError, match="fold"):
        StatusTable("acme", {"A": documented(S.PENDING, "x"), "a": documented(S.PENDING, "x")})


def test_extra_words_come_first_and_name_the_operator_as_source():
    table = TABLE.with_extra({"Shipped": S.APPROVED, "wait": S.IN_REVIEW})
    assert table.lookup("shipped") is S.APPROVED
    assert table.lookup("WAIT") is S.IN_REVIEW  # corrects a built-in row
    assert "operator" in (table.source("SHIPPED") or "")
    assert TABLE.lookup("wait") is S.PENDING  # the built-in table is unchanged


def test_parsing_extra_words():
    assert parse_status_map_extra("V", "") == {}
    assert parse_status_map_extra("V", " VERIFYING = in_review , error:x_y=Rejected ") == {
        "VERIFYING": S.IN_REVIEW,
        "error:x_y": S.REJECTED,
    }
    assert parse_status_map_extra("V", "in review=in_review") == {"in review": S.IN_REVIEW}


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("VERIFYING", "must be WORD=status"),
        ("=approved", "must be WORD=status"),
        ("VERIFYING=", "must be WORD=status"),
        ("A=approved,,B=pending", "pair 2 must be WORD=status"),
        ("VERIFYING=reviewing", "not a status"),
        ("VERIFYING=timed_out", "not a status"),
        ("a=b=c", "not a status"),
        ("-x=approved", "not a status word"),
        ("x" * 65 + "=approved", "not a status word"),
        ("A=approved,a=pending", "mapped twice"),
    ],
)
def test_bad_extra_words_are_configuration_errors_naming_the_variable(raw, why):
    with pytest.raises(ConfigurationError, match=why) as info:
        parse_status_map_extra("KYC_NOTUS_STATUS_MAP_EXTRA", raw)
    assert str(info.value).startswith("KYC_NOTUS_STATUS_MAP_EXTRA")


def test_settings_refuse_bad_extra_words_when_they_load():
    with pytest.raises(ConfigurationError, match="KYC_GU1_STATUS_MAP_EXTRA"):
        Settings.from_env({"KYC_GU1_STATUS_MAP_EXTRA": "on_hold=later"})
    settings = Settings.from_env({"KYC_GU1_STATUS_MAP_EXTRA": "on_hold=in_review"})
    assert settings.providers["gu1"].status_map_extra == {"on_hold": S.IN_REVIEW}
    assert settings.providers["notus"].status_map_extra == {}


def _answer(body: bytes) -> ProviderResponse:
    return ProviderResponse(200, {}, body)


def test_an_adapter_applies_its_extra_words_on_top_of_its_table():
    adapter = NotusAdapter(
        ApiKeySettings(
            base_url="https://notus.test", api_key="k", status_map_extra={"ON_HOLD": S.IN_REVIEW}
        )
    )
    result = adapter.interpret(_answer(b'{"session": {"status": "on_hold"}}'))
    assert result.status is S.IN_REVIEW and result.provider_status == "on_hold"
    assert adapter.interpret(_answer(b'{"session": {"status": "COMPLETED"}}')).status is S.APPROVED


def test_bank131_extra_error_codes_are_decisions_without_an_error_code_we_do_not_have():
    adapter = Bank131Adapter(
        Bank131Settings(
            base_url="https://bank131.test",
            project="p",
            status_map_extra={"error:document_expired": S.REJECTED},
        )
    )
    body = b'{"status": "error", "error": {"code": "document_expired", "description": "old"}}'
    result = adapter.interpret(_answer(body))
    assert result.status is S.REJECTED
    assert result.provider_status == "error:document_expired"
    assert result.error_code is None
    assert result.summary["error_code"] == "document_expired"
