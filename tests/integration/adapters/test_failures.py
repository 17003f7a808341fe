"""Every fault the fakes can play becomes the right error class and code, for every provider."""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from devkit.fake_providers import bank131 as fake_bank131
from devkit.fake_providers import gu1 as fake_gu1
from devkit.fake_providers import notus as fake_notus
from devkit.fake_providers import predicate as fake_predicate
from devkit.fake_providers.credentials import FakeCredentials
from devkit.fake_providers.server import FakeProviders
from tests.integration.adapters.conftest import BlockingAdapter, Client
from worker.adapters.event_loop import EventLoopThread
from worker.adapters.registry import build_adapter
from worker.adapters.transport import AiohttpTransport, TransportLimits
from worker.config import Settings
from worker.domain.errors import (
    PermanentProviderError,
    ProviderError,
    ProviderUnavailableError,
    TransientProviderError,
)

from .conftest import TIMEOUT_DELAY

PROVIDERS = ["notus", "bank131", "gu1", "predicate"]
# A status word each provider knows, to show that polling goes on normally after a fault.
KNOWN = {"notus": "VERIFYING", "bank131": "pending", "gu1": "in_review", "predicate": "submitted"}
PERSONAL = {
    "notus": fake_notus.PERSONAL_VALUES,
    "bank131": fake_bank131.PERSONAL_VALUES,
    "gu1": fake_gu1.PERSONAL_VALUES,
    "predicate": fake_predicate.PERSONAL_VALUES,
}
NOT_FOUND_CODE = {"notus": "not_found", "gu1": "not_found", "predicate": "not_found"}
NOT_FOUND_CODE["bank131"] = "request_not_found"
SECRETS = list(FakeCredentials().secret_values())


def poll_error(fake, new_id, make_adapter, provider, script, http_client=None) -> ProviderError:
    session_id = new_id(provider)
    fake.add_session(provider, session_id, script)
    with pytest.raises(ProviderError) as info:
        make_adapter(provider, http_client).fetch_status(session_id, None)
    return info.value


def assert_safe_message(error: ProviderError, provider: str) -> None:
    """Messages never carry credentials or the personal data of the body."""
    text = f"{error} {error.message}"
    for value in (*SECRETS, *PERSONAL[provider]):
        assert value not in text


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("http_status", [500, 502, 503])
def test_5xx_is_transient_server_error(
    fake_providers, new_session_id, make_adapter, provider, http_status
):
    script = [{"fault": "server_error", "http_status": http_status}]
    error = poll_error(fake_providers, new_session_id, make_adapter, provider, script)
    assert isinstance(error, ProviderUnavailableError) and not error.permanent
    assert (error.code, error.http_status) == ("server_error", http_status)
    assert f"HTTP {http_status}" in error.message and provider in error.message


@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_is_transient_and_carries_retry_after_seconds(
    fake_providers, new_session_id, make_adapter, provider
):
    script = [{"fault": "rate_limited", "retry_after": 7}]
    error = poll_error(fake_providers, new_session_id, make_adapter, provider, script)
    assert isinstance(error, TransientProviderError)
    assert (error.code, error.http_status, error.retry_after) == ("rate_limited", 429, 7.0)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_retry_after_as_http_date(fake_providers, new_session_id, make_adapter, provider):
    when = datetime.now(UTC) + timedelta(seconds=40)
    script = [{"fault": "rate_limited", "retry_after": format_datetime(when, usegmt=True)}]
    error = poll_error(fake_providers, new_session_id, make_adapter, provider, script)
    assert error.code == "rate_limited"
    assert error.retry_after is not None and 30 <= error.retry_after <= 41


@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_retry_after_in_the_past_is_clamped_to_zero(
    fake_providers, new_session_id, make_adapter, provider
):
    script = [{"fault": "rate_limited", "retry_after": "Wed, 21 Oct 2015 07:28:00 GMT"}]
    error = poll_error(fake_providers, new_session_id, make_adapter, provider, script)
    assert (error.code, error.retry_after) == ("rate_limited", 0.0)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_without_retry_after_leaves_it_to_the_backoff(
    fake_providers, new_session_id, make_adapter, provider
):
    error = poll_error(
        fake_providers, new_session_id, make_adapter, provider, [{"fault": "rate_limited"}]
    )
    assert (error.code, error.retry_after) == ("rate_limited", None)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_slow_answer_is_a_transient_timeout_and_the_next_poll_goes_on(
    fake_providers, new_session_id, make_adapter, impatient_http, provider
):
    session_id = new_session_id(provider)
    script = [
        {"fault": "timeout", "delay": TIMEOUT_DELAY, "status": KNOWN[provider]},
        KNOWN[provider],
    ]
    fake_providers.add_session(provider, session_id, script)
    adapter = make_adapter(provider, impatient_http)
    started = time.monotonic()
    with pytest.raises(TransientProviderError) as info:
        adapter.fetch_status(session_id, None)
    assert time.monotonic() - started < TIMEOUT_DELAY  # the client gave up, not the server
    assert info.value.code == "timeout"
    assert adapter.fetch_status(session_id, None).provider_status == KNOWN[provider]


def test_timeout_step_answers_the_last_status_when_the_client_waits(
    fake_providers, new_session_id, make_adapter
):
    session_id = new_session_id("gu1")
    fake_providers.add_session(
        "gu1", session_id, ["in_progress", {"fault": "timeout", "delay": 0.2}]
    )
    adapter = make_adapter("gu1")  # read timeout 5 s: waits for the late answer
    assert adapter.fetch_status(session_id, None).provider_status == "in_progress"
    assert adapter.fetch_status(session_id, None).provider_status == "in_progress"


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("fault", ["garbage", "not_object", "malformed"])
def test_unreadable_answers_are_permanent_malformed_response(
    fake_providers, new_session_id, make_adapter, provider, fault
):
    error = poll_error(fake_providers, new_session_id, make_adapter, provider, [{"fault": fault}])
    assert isinstance(error, PermanentProviderError) and error.permanent
    assert error.code == "malformed_response"
    assert_safe_message(error, provider)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_not_found_is_permanent(fake_providers, new_session_id, make_adapter, provider):
    error = poll_error(
        fake_providers, new_session_id, make_adapter, provider, [{"fault": "not_found"}]
    )
    assert isinstance(error, PermanentProviderError)
    assert (error.code, error.http_status) == (NOT_FOUND_CODE[provider], 404)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unknown_session_is_permanent_not_found(
    fake_providers, new_session_id, make_adapter, provider
):
    with pytest.raises(PermanentProviderError) as info:
        make_adapter(provider).fetch_status(new_session_id(provider), None)
    assert info.value.code == NOT_FOUND_CODE[provider]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("http_status", "code", "kind"),
    [
        (400, "http_error", PermanentProviderError),
        (401, "auth_failed", ProviderUnavailableError),
        (403, "auth_failed", ProviderUnavailableError),
    ],
)
def test_other_4xx_without_a_provider_body(
    fake_providers, new_session_id, make_adapter, provider, http_status, code, kind
):
    """A 400 is this check's; refused credentials are the provider's (never the row's)."""
    script = [{"fault": "http_error", "http_status": http_status}]
    error = poll_error(fake_providers, new_session_id, make_adapter, provider, script)
    assert isinstance(error, kind)
    assert (error.code, error.http_status) == (code, http_status)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unknown_status_word_is_transient_and_reports_the_word(
    fake_providers, new_session_id, make_adapter, provider
):
    word = "error:brand_new_code" if provider == "bank131" else "BRAND_NEW_STATE"
    error = poll_error(fake_providers, new_session_id, make_adapter, provider, [word])
    assert isinstance(error, TransientProviderError)
    assert (error.code, error.provider_status) == ("unknown_status", word)


@pytest.mark.parametrize(
    ("provider", "overrides", "code"),
    [
        ("notus", {"api_key": "wrong-key"}, "auth_failed"),
        ("gu1", {"api_key": "wrong-key"}, "auth_failed"),
        ("predicate", {"api_key": "wrong-key"}, "auth_failed"),
        ("bank131", {"project": "someone-elses-project"}, "partner_project_not_found"),
    ],
)
def test_wrong_credentials_are_provider_wide_faults_and_reach_no_session(
    fake_providers, new_session_id, make_adapter, provider, overrides, code
):
    session_id = new_session_id(provider)
    fake_providers.add_session(provider, session_id, [KNOWN[provider]])
    with pytest.raises(ProviderUnavailableError) as info:
        make_adapter(provider, **overrides).fetch_status(session_id, None)
    assert info.value.code == code
    assert info.value.http_status in {401, 403}
    assert fake_providers.request_count(provider, session_id) == 0
    for secret in (*SECRETS, *overrides.values()):
        assert secret not in str(info.value)
    # The right credentials do reach it: the refusal was about the credentials only.
    assert make_adapter(provider).fetch_status(session_id, None).provider_status == KNOWN[provider]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_nothing_listening_is_a_transient_connection_error(make_adapter, provider):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = make_adapter(provider, base_url=f"http://127.0.0.1:{port}/{provider}")
    with pytest.raises(TransientProviderError) as info:
        adapter.fetch_status(
            "550e8400-e29b-41d4-a716-446655440000" if provider == "predicate" else "42", None
        )
    assert info.value.code == "connection_error"


def test_a_wrong_signature_is_a_provider_wide_fault(new_session_id):
    """A fake that checks HMAC signatures refuses the wrong secret with invalid_sign."""
    credentials = FakeCredentials(bank131_signing_mode="hmac", bank131_signing_secret="right")
    with FakeProviders(credentials=credentials) as fake, EventLoopThread("sign-test") as loop:
        session_id = new_session_id("bank131")
        fake.add_session("bank131", session_id, ["ok"])
        base = Settings.from_env(fake.provider_env()).providers["bank131"]
        client = Client(loop, AiohttpTransport(TransportLimits()))
        try:
            wrong = BlockingAdapter(
                build_adapter("bank131", replace(base, signing_secret="wrong-secret")), client
            )
            with pytest.raises(ProviderUnavailableError) as info:
                wrong.fetch_status(session_id, None)
            assert info.value.code == "invalid_sign"
            assert "wrong-secret" not in str(info.value) and "right" not in str(info.value)
            assert fake.request_count("bank131", session_id) == 0
            right = BlockingAdapter(build_adapter("bank131", base), client)
            assert right.fetch_status(session_id, None).provider_status == "ok"
            # The path is signed as it is sent: the transport does not re-quote it (an id's
            # colon stays %3A on the wire, as in the signature).
            with_colon = f"{new_session_id('bank131')}:2"
            fake.add_session("bank131", with_colon, ["ok"])
            assert right.fetch_status(with_colon, None).provider_status == "ok"
        finally:
            loop.run(client.transport.close())
