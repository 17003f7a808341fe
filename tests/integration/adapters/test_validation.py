"""Ids, types and configuration are checked before any request is made."""

from __future__ import annotations

import pytest

from worker.adapters import get_adapter_class
from worker.adapters.bank131 import Bank131Adapter
from worker.adapters.base import PermanentProviderError, ProviderConfigurationError
from worker.adapters.gu1 import Gu1Adapter
from worker.adapters.http import ProviderHttp
from worker.adapters.notus import NotusAdapter
from worker.adapters.predicate import PredicateAdapter
from worker.config import ProviderSettings

UUID = "550e8400-e29b-41d4-a716-446655440000"
HOSTILE_IDS = [
    "",
    "../admin",
    "a/b",
    "..",
    "id with space",
    "id?x=1",
    "id#frag",
    "%2e%2e",
    "new\nline",
    "tab\tid",
    "x" * 129,
    "ümlaut",
    "-starts-with-dash",
]
PROVIDERS = ["notus", "bank131", "gu1", "predicate"]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("external_id", HOSTILE_IDS)
def test_hostile_ids_are_refused(provider, external_id):
    with pytest.raises(ValueError):
        get_adapter_class(provider).validate_external_id(external_id, None)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("external_id", [None, 42, b"bytes"])
def test_non_string_ids_are_refused(provider, external_id):
    with pytest.raises(ValueError, match="string"):
        get_adapter_class(provider).validate_external_id(external_id, None)


@pytest.mark.parametrize(
    ("provider", "external_id"),
    [("notus", "sess_1.a-b:c"), ("bank131", "7"), ("bank131", "chk-77"), ("gu1", "val-123")],
)
def test_plain_tokens_are_accepted(provider, external_id):
    get_adapter_class(provider).validate_external_id(external_id, None)


@pytest.mark.parametrize("provider", ["notus", "bank131", "gu1"])
@pytest.mark.parametrize("verification_type", ["individual", "business", "x"])
def test_providers_without_types_refuse_a_type(provider, verification_type):
    with pytest.raises(ValueError, match="no verification types"):
        get_adapter_class(provider).validate_external_id("abc", verification_type)


@pytest.mark.parametrize("verification_type", [None, "individual", "business"])
def test_predicate_accepts_its_types(verification_type):
    PredicateAdapter.validate_external_id(UUID, verification_type)
    PredicateAdapter.validate_external_id(UUID.upper(), verification_type)


@pytest.mark.parametrize("verification_type", ["company", "Individual", "../individual", ""])
def test_predicate_refuses_other_types(verification_type):
    with pytest.raises(ValueError, match="individual, business"):
        PredicateAdapter.validate_external_id(UUID, verification_type)


@pytest.mark.parametrize(
    "session_id",
    [
        "abc",
        "550e8400e29b41d4a716446655440000",
        "{550e8400-e29b-41d4-a716-446655440000}",
        "urn:uuid:550e8400-e29b-41d4-a716-446655440000",
        "550e8400-e29b-41d4-a716-44665544000g",
        "550e8400-e29b-41d4-a716-4466554400001",
    ],
)
def test_predicate_refuses_session_ids_that_are_not_uuids(session_id):
    with pytest.raises(ValueError, match=r"UUID|plain token"):
        PredicateAdapter.validate_external_id(session_id, None)


def test_default_verification_types():
    assert PredicateAdapter.default_verification_type == "individual"
    for adapter_class in (NotusAdapter, Bank131Adapter, Gu1Adapter):
        assert adapter_class.default_verification_type is None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_fetch_refuses_a_hostile_id_without_a_request(make_adapter, provider):
    with pytest.raises(PermanentProviderError) as info:
        make_adapter(provider).fetch_status("../../etc/passwd", None)
    assert info.value.code == "invalid_external_id"


KEY = "secret-api-key-5150"
SIGNING_SECRET = "secret-signing-8080"
GOOD = {
    "notus": ProviderSettings(base_url="http://fake.test/notus", api_key=KEY),
    "bank131": ProviderSettings(
        base_url="http://fake.test/bank131", project="proj", signing_secret=SIGNING_SECRET
    ),
    "gu1": ProviderSettings(base_url="http://fake.test/gu1", api_key=KEY),
    "predicate": ProviderSettings(base_url="http://fake.test/predicate", api_key=KEY),
}
BROKEN = [
    ("notus", {"base_url": ""}),
    ("notus", {"api_key": ""}),
    ("notus", {"base_url": "ftp://fake.test/notus"}),
    ("notus", {"base_url": "fake.test/notus"}),
    ("bank131", {"base_url": ""}),
    ("bank131", {"project": ""}),
    ("bank131", {"signing_secret": ""}),
    ("bank131", {"method": "PUT"}),
    ("gu1", {"base_url": ""}),
    ("gu1", {"api_key": ""}),
    ("predicate", {"base_url": ""}),
    ("predicate", {"api_key": ""}),
    ("predicate", {"base_url": "http://fake.test/predicate?key=1"}),
]


@pytest.mark.parametrize(("provider", "overrides"), BROKEN)
def test_missing_or_bad_configuration_is_refused(http: ProviderHttp, provider, overrides):
    settings = ProviderSettings(**{**vars(GOOD[provider]), **overrides})
    with pytest.raises(ProviderConfigurationError) as info:
        get_adapter_class(provider)(settings, http)  # type: ignore[call-arg]
    assert provider in str(info.value)
    assert KEY not in str(info.value) and SIGNING_SECRET not in str(info.value)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_good_configuration_builds(http: ProviderHttp, provider):
    adapter = get_adapter_class(provider)(GOOD[provider], http)  # type: ignore[call-arg]
    assert adapter.name == provider
