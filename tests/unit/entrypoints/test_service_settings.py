"""The HTTP service's settings: validated at start, secrets never shown."""

from __future__ import annotations

import pytest

from worker.domain.api_tokens import digest_of
from worker.domain.errors import ConfigurationError
from worker.domain.webhooks import PointerFormat
from worker.entrypoints.http.settings import ServiceSettings

SECRET = "a-webhook-secret-long-enough"


def test_defaults_are_off_and_bounded():
    settings = ServiceSettings.from_env({})
    assert settings.webhooks == {} and settings.tokens == ()
    assert settings.host == "127.0.0.1" and settings.streams.max_streams == 0
    assert settings.max_body_bytes == 65536 and settings.max_json_depth == 32


def test_gu1_uses_its_documented_format_and_hides_its_secret():
    settings = ServiceSettings.from_env({"GU1_WEBHOOK_SECRET": SECRET})
    hook = settings.webhooks["gu1"]
    assert hook.format.scheme.header == "X-Webhook-Signature"
    assert (
        SECRET not in repr(settings) and SECRET not in repr(hook) and SECRET not in str(hook.secret)
    )
    assert hook.secret.reveal() == SECRET.encode()


def test_the_generic_scheme_is_built_from_its_variables():
    settings = ServiceSettings.from_env(
        {
            "BANK131_WEBHOOK_SECRET": SECRET,
            "BANK131_WEBHOOK_HEADER": "X-Sign",
            "BANK131_WEBHOOK_ENCODING": "BASE64",
            "BANK131_WEBHOOK_ID_POINTER": "/check/id",
            "BANK131_WEBHOOK_TIMESTAMP_POINTER": "/sent_at",
        }
    )
    fmt = settings.webhooks["bank131"].format
    assert isinstance(fmt, PointerFormat)
    assert (fmt.scheme.header, fmt.scheme.encoding, fmt.id_pointer.tokens) == (
        "X-Sign",
        "base64",
        ("check", "id"),
    )


@pytest.mark.parametrize(
    "env",
    [
        {"GU1_WEBHOOK_SECRET": "short"},
        {"GU1_WEBHOOK_SECRET": SECRET, "GU1_WEBHOOK_HEADER": "X-Other"},
        {"NOTUS_WEBHOOK_HEADER": "X-Sig"},  # a scheme without its secret
        {"NOTUS_WEBHOOK_SECRET": SECRET, "NOTUS_WEBHOOK_HEADER": "X-Sig"},  # no id pointer
        {"NOTUS_WEBHOOK_SECRET": SECRET, "NOTUS_WEBHOOK_ID_POINTER": "/id"},  # no header
        {
            "NOTUS_WEBHOOK_SECRET": SECRET,
            "NOTUS_WEBHOOK_HEADER": "X-Sig",
            "NOTUS_WEBHOOK_ID_POINTER": "/id",
            "NOTUS_WEBHOOK_ALGORITHM": "md5",
        },
        {
            "NOTUS_WEBHOOK_SECRET": SECRET,
            "NOTUS_WEBHOOK_HEADER": "X-Sig",
            "NOTUS_WEBHOOK_ID_POINTER": "id",
        },
        {"KYC_WEBHOOK_TRACK_UNKNOWN": "gu1,veriff"},
        {"KYC_API_TOKENS": "app:admin:" + "a" * 64},
        {"KYC_API_TOKENS_FILE": "/nonexistent/tokens"},
        {"KYC_WEBHOOK_MAX_BODY_BYTES": "10"},
        {"KYC_HINT_COLLAPSE_SECONDS": "0"},
        {"KYC_SERVE_PORT": "70000"},
    ],
)
def test_bad_settings_are_refused_at_start_without_quoting_secrets(env):
    with pytest.raises(ConfigurationError) as caught:
        ServiceSettings.from_env(env)
    assert SECRET not in str(caught.value)


def test_tokens_from_the_variable_and_a_file(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f"# ops\nops:read:{digest_of('kyc_b')}\n")
    settings = ServiceSettings.from_env(
        {"KYC_API_TOKENS": f"app:track:{digest_of('kyc_a')}", "KYC_API_TOKENS_FILE": str(path)}
    )
    assert [token.name for token in settings.tokens] == ["app", "ops"]
    assert settings.track_unknown == frozenset()
