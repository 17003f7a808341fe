"""Ids, types and configuration each adapter accepts or refuses (no network)."""

from __future__ import annotations

import asyncio
import dataclasses
from urllib.parse import urlsplit

import pytest

from worker.adapters.bank131 import Bank131Adapter, Bank131Settings
from worker.adapters.common import ApiKeySettings
from worker.adapters.gu1 import Gu1Adapter
from worker.adapters.notus import NotusAdapter
from worker.adapters.predicate import PredicateAdapter
from worker.adapters.registry import PROVIDER_NAMES, adapter_class, build_adapter
from worker.config import Settings
from worker.domain.errors import (
    ConfigurationError,
    PermanentProviderError,
    ProviderConfigurationError,
)

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
PROVIDERS = list(PROVIDER_NAMES)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("external_id", HOSTILE_IDS)
def test_hostile_ids_are_refused(provider, external_id):
    with pytest.raises(ValueError):
        adapter_class(provider).canonical_id(external_id)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("external_id", [None, 42, b"bytes"])
def test_non_string_ids_are_refused(provider, external_id):
    with pytest.raises(ValueError, match="string"):
        adapter_class(provider).canonical_id(external_id)


@pytest.mark.parametrize(
    ("provider", "external_id"),
    [("notus", "sess_1.a-b:c"), ("bank131", "7"), ("bank131", "chk-77"), ("gu1", "val-123")],
)
def test_plain_tokens_are_accepted_as_they_are(provider, external_id):
    assert adapter_class(provider).canonical_id(external_id) == external_id


@pytest.mark.parametrize("provider", ["notus", "bank131", "gu1"])
@pytest.mark.parametrize("verification_type", ["individual", "business", "x"])
def test_providers_without_types_refuse_a_type(provider, verification_type):
    with pytest.raises(ValueError, match="no verification types"):
        adapter_class(provider).canonical_type(verification_type)


@pytest.mark.parametrize(
    ("verification_type", "canonical"),
    [
        (None, "individual"),
        ("", "individual"),
        ("individual", "individual"),
        ("business", "business"),
        ("Business", "business"),
    ],
)
def test_predicate_accepts_its_types(verification_type, canonical):
    assert PredicateAdapter.canonical_type(verification_type) == canonical


def test_predicate_ids_are_canonical_in_lower_case():
    assert PredicateAdapter.canonical_id(UUID.upper()) == UUID
    assert PredicateAdapter.canonical_id(UUID) == UUID


@pytest.mark.parametrize("verification_type", ["company", "../individual", 5])
def test_predicate_refuses_other_types(verification_type):
    with pytest.raises(ValueError, match=r"individual, business|string"):
        PredicateAdapter.canonical_type(verification_type)


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
        PredicateAdapter.canonical_id(session_id)


def test_default_verification_types():
    assert PredicateAdapter.default_verification_type == "individual"
    for cls in (NotusAdapter, Bank131Adapter, Gu1Adapter):
        assert cls.default_verification_type is None


class NoTransport:
    async def send(self, provider, request):
        raise AssertionError("no request may be sent for a hostile id")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_fetch_refuses_a_hostile_id_without_a_request(provider):
    adapter = build_adapter(provider, GOOD[provider])
    with pytest.raises(PermanentProviderError) as info:
        asyncio.run(adapter.fetch_status(NoTransport(), "../../etc/passwd", None))
    assert info.value.code == "invalid_external_id"


KEY = "secret-api-key-5150"
SIGNING_SECRET = "secret-signing-8080"
GOOD = {
    "notus": ApiKeySettings(base_url="https://fake.test/notus", api_key=KEY),
    "bank131": Bank131Settings(
        base_url="https://fake.test/bank131",
        project="proj",
        signing_mode="hmac",
        signing_secret=SIGNING_SECRET,
    ),
    "gu1": ApiKeySettings(base_url="https://fake.test/gu1", api_key=KEY),
    "predicate": ApiKeySettings(base_url="https://fake.test/predicate", api_key=KEY),
}
BROKEN = [
    ("notus", {"base_url": ""}),
    ("notus", {"api_key": ""}),
    ("notus", {"base_url": "ftp://fake.test/notus"}),
    ("notus", {"base_url": "fake.test/notus"}),
    ("bank131", {"base_url": ""}),
    ("bank131", {"project": ""}),
    ("bank131", {"signing_secret": ""}),
    ("bank131", {"signing_mode": "rsa"}),
    ("bank131", {"signing_mode": "guess"}),
    ("bank131", {"method": "PUT"}),
    ("bank131", {"api_version": "v3"}),
    ("bank131", {"api_version": "1.1"}),
    ("gu1", {"base_url": ""}),
    ("gu1", {"api_key": ""}),
    ("predicate", {"base_url": ""}),
    ("predicate", {"api_key": ""}),
    ("predicate", {"base_url": "https://fake.test/predicate?key=1"}),
]


@pytest.mark.parametrize(("provider", "overrides"), BROKEN)
def test_missing_or_bad_configuration_is_refused(provider, overrides):
    settings = type(GOOD[provider])(**{**vars(GOOD[provider]), **overrides})
    with pytest.raises(ProviderConfigurationError) as info:
        build_adapter(provider, settings)
    assert provider.upper() in str(info.value).upper()
    assert KEY not in str(info.value) and SIGNING_SECRET not in str(info.value)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_good_configuration_builds(provider):
    assert build_adapter(provider, GOOD[provider]).name == provider


def test_bank131_needs_no_signature_by_default():
    settings = Bank131Settings(base_url="https://fake.test/bank131", project="proj")
    request = build_adapter("bank131", settings).build_request("123", None)
    assert "X-PARTNER-SIGN" not in request.headers
    assert request.headers["X-PARTNER-PROJECT"] == "proj"


@pytest.mark.parametrize(
    ("base_url", "version", "method", "expected"),
    [
        # bank131.txt (v1.1): GET on the stage host, POST on the live host
        ("https://kyc-stage.bank131.ru", "v1.1", "", ("GET", "/api/v1.1/check/7")),
        ("https://kyc.bank131.ru", "v1.1", "", ("POST", "/api/v1.1/check/7")),
        ("https://KYC.bank131.ru/", "v1.1", "", ("POST", "/api/v1.1/check/7")),
        # developer.131.ru/en/verification/verification-status (v2.0): GET on both hosts
        ("https://kyc.bank131.ru", "v2.0", "", ("GET", "/api/v2.0/check/7")),
        ("https://kyc-stage.bank131.ru", "V2.0", "", ("GET", "/api/v2.0/check/7")),
        # any other host (a proxy, the fakes): GET
        ("https://proxy.test/bank131", "v1.1", "", ("GET", "/bank131/api/v1.1/check/7")),
        # an explicit BANK131_METHOD wins
        ("https://kyc.bank131.ru", "v1.1", "get", ("GET", "/api/v1.1/check/7")),
        ("https://kyc.bank131.ru", "v2.0", "POST", ("POST", "/api/v2.0/check/7")),
    ],
)
def test_bank131_version_and_method_follow_the_documents_per_host(
    base_url, version, method, expected
):
    settings = Bank131Settings(base_url=base_url, project="p", api_version=version, method=method)
    request = build_adapter("bank131", settings).build_request("7", None)
    assert (request.method, urlsplit(request.url).path) == expected
    assert request.body == b""


def test_bank131_version_is_read_from_the_environment():
    env = {"BANK131_BASE_URL": "https://kyc.bank131.ru", "BANK131_PROJECT": "p"}
    default = Settings.from_env(env).providers["bank131"]
    assert isinstance(default, Bank131Settings) and default.api_version == "v1.1"
    newer = Settings.from_env({**env, "BANK131_API_VERSION": "v2.0"}).providers["bank131"]
    request = build_adapter("bank131", newer).build_request("7", None)
    assert (request.method, urlsplit(request.url).path) == ("GET", "/api/v2.0/check/7")


def test_a_bad_base_url_is_refused_without_quoting_it():
    settings = ApiKeySettings(base_url="ftp://user:hunter2@host/notus", api_key=KEY)
    with pytest.raises(ProviderConfigurationError) as info:
        build_adapter("notus", settings)
    assert "hunter2" not in str(info.value) and "'ftp'" in str(info.value)


@pytest.mark.parametrize(
    "base_url",
    [
        "http://:8080",
        "http://host:99999/x",
        "http://exa mple.com",
        "https://bücher.example/x",
        "https://kyc.example/api%zz",
    ],
    ids=["no-host", "bad-port", "space", "not-ascii", "bad-percent-escape"],
)
def test_a_base_url_no_request_could_use_is_refused_at_start(base_url):
    # Accepted, it failed at the first call of every verification instead.
    with pytest.raises(ProviderConfigurationError, match="notus base URL"):
        build_adapter("notus", ApiKeySettings(base_url=base_url, api_key=KEY))


def test_a_base_url_with_valid_escapes_is_sent_as_written():
    settings = ApiKeySettings(base_url="https://kyc.example/api%20v2/", api_key=KEY)
    request = build_adapter("notus", settings).build_request("sess-1", None)
    assert request.url.startswith("https://kyc.example/api%20v2/")


@pytest.mark.parametrize(
    ("base_url", "allowed"),
    [
        ("https://api.example.com", True),
        ("http://127.0.0.1:8080/notus", True),
        ("http://localhost:8080", True),
        ("http://[::1]:8080", True),
        ("http://api.example.com", False),
        ("http://10.0.0.5:8080", False),
    ],
)
def test_plain_http_is_refused_off_loopback_unless_allowed(base_url, allowed):
    settings = ApiKeySettings(base_url=base_url, api_key=KEY)
    if allowed:
        NotusAdapter(settings)
    else:
        with pytest.raises(ProviderConfigurationError, match="NOTUS_ALLOW_INSECURE_HTTP"):
            NotusAdapter(settings)
        NotusAdapter(dataclasses.replace(settings, allow_insecure_http=True))


def test_the_insecure_http_switch_is_a_boolean_setting():
    assert NotusAdapter.settings_from_env({"NOTUS_ALLOW_INSECURE_HTTP": "true"}).allow_insecure_http
    assert not NotusAdapter.settings_from_env({}).allow_insecure_http
    with pytest.raises(ConfigurationError, match="true or false"):
        NotusAdapter.settings_from_env({"NOTUS_ALLOW_INSECURE_HTTP": "maybe"})
