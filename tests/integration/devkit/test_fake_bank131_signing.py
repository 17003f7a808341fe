"""The fake Bank131 verifies the configured signing mode, over real HTTP with plain requests.

Requests are signed with worker.adapters.bank131_signing (what the adapter uses)
and checked by the fake's own verification. Keys are generated at test time.
"""

from __future__ import annotations

import base64
import itertools
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from devkit.fake_providers.credentials import DEFAULT_BANK131_PROJECT, FakeCredentials
from devkit.fake_providers.server import FakeProviders
from worker.adapters.bank131_signing import (
    SIGN_HEADER,
    HmacSigner,
    NoSigner,
    RsaSigner,
    SigningMode,
    build_signer,
)

HMAC_SECRET = "fake-hmac-secret-4711"
_counter = itertools.count(1)


def new_id() -> str:
    return f"{uuid.uuid4().int % 10**9}{next(_counter)}"


def start(credentials: FakeCredentials) -> Iterator[FakeProviders]:
    with FakeProviders(credentials=credentials) as fake:
        yield fake


@pytest.fixture(scope="module")
def rsa_credentials() -> FakeCredentials:
    return FakeCredentials.with_bank131_rsa_key()


@pytest.fixture(scope="module")
def none_fake() -> Iterator[FakeProviders]:
    yield from start(FakeCredentials())


@pytest.fixture(scope="module")
def rsa_fake(rsa_credentials) -> Iterator[FakeProviders]:
    yield from start(rsa_credentials)


@pytest.fixture(scope="module")
def hmac_fake() -> Iterator[FakeProviders]:
    yield from start(
        FakeCredentials(bank131_signing_mode="hmac", bank131_signing_secret=HMAC_SECRET)
    )


@pytest.fixture(scope="module")
def rsa_signer(rsa_credentials) -> RsaSigner:
    return RsaSigner.from_pem(rsa_credentials.bank131_rsa_private_key)


@pytest.fixture(scope="module")
def other_rsa_signer() -> RsaSigner:
    return RsaSigner(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def check(
    fake: FakeProviders,
    session_id: str,
    *,
    method: str = "GET",
    signer: object = None,
    signature: str | None = None,
    project: str = DEFAULT_BANK131_PROJECT,
    body: bytes = b"",
    signed_body: bytes | None = None,
) -> requests.Response:
    """One status check; `signer` signs `signed_body` (default: the body sent)."""
    url = f"{fake.base_url('bank131')}/api/v1.1/check/{session_id}"
    headers = {"X-PARTNER-PROJECT": project, "Content-Type": "application/json"}
    if signer is not None:
        signed = body if signed_body is None else signed_body
        signature = signer.sign(method, urlsplit(url).path, signed)  # type: ignore[attr-defined]
    if signature is not None:
        headers[SIGN_HEADER] = signature
    return requests.request(method, url, headers=headers, data=body, timeout=5)


def session(fake: FakeProviders) -> str:
    session_id = new_id()
    fake.add_session("bank131", session_id, ["pending"])
    return session_id


def assert_accepted(answer: requests.Response) -> None:
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "pending"


def assert_refused(answer: requests.Response, code: str) -> None:
    assert answer.status_code == 403
    document = answer.json()
    assert document["status"] == "error"
    assert document["error"]["code"] == code


# -- none -------------------------------------------------------------------------------


def test_the_default_mode_is_none():
    assert FakeCredentials().bank131_signing_mode == "none"


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("signature", [None, "anything", ""])
def test_none_accepts_with_or_without_a_signature(none_fake, method, signature):
    session_id = session(none_fake)
    assert_accepted(check(none_fake, session_id, method=method, signature=signature))
    assert none_fake.request_count("bank131", session_id) == 1


def test_none_still_checks_the_project(none_fake):
    session_id = session(none_fake)
    assert_refused(
        check(none_fake, session_id, project="someone-else"), "partner_project_not_found"
    )
    answer = requests.get(f"{none_fake.base_url('bank131')}/api/v1.1/check/{session_id}", timeout=5)
    assert_refused(answer, "partner_project_not_found")
    assert none_fake.request_count("bank131", session_id) == 0


# -- rsa ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_rsa_accepts_the_partners_signature_of_the_empty_body(rsa_fake, rsa_signer, method):
    session_id = session(rsa_fake)
    assert_accepted(check(rsa_fake, session_id, method=method, signer=rsa_signer))
    assert rsa_fake.request_count("bank131", session_id) == 1


def test_rsa_verifies_a_non_empty_body(rsa_fake, rsa_signer):
    session_id = session(rsa_fake)
    assert_accepted(check(rsa_fake, session_id, method="POST", signer=rsa_signer, body=b"{}"))
    answer = check(
        rsa_fake, session_id, method="POST", signer=rsa_signer, body=b"{}", signed_body=b""
    )
    assert_refused(answer, "invalid_sign")


def test_rsa_refuses_a_missing_signature(rsa_fake):
    session_id = session(rsa_fake)
    assert_refused(check(rsa_fake, session_id), "invalid_sign")
    assert_refused(check(rsa_fake, session_id, signer=NoSigner()), "invalid_sign")
    assert rsa_fake.request_count("bank131", session_id) == 0


def test_rsa_refuses_another_keys_signature(rsa_fake, other_rsa_signer):
    session_id = session(rsa_fake)
    assert_refused(check(rsa_fake, session_id, signer=other_rsa_signer), "invalid_sign")
    assert rsa_fake.request_count("bank131", session_id) == 0


def test_rsa_refuses_a_pss_signature_of_the_right_key(rsa_fake, rsa_credentials):
    key = serialization.load_pem_private_key(
        rsa_credentials.bank131_rsa_private_key.encode(), password=None
    )
    assert isinstance(key, rsa.RSAPrivateKey)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    signature = base64.b64encode(key.sign(b"", pss, hashes.SHA256())).decode()
    assert_refused(check(rsa_fake, session(rsa_fake), signature=signature), "invalid_sign")


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda s: s[:-8] + "AAAAAAA=", id="tampered"),
        pytest.param(lambda s: s.rstrip("="), id="unpadded"),
        pytest.param(lambda s: "!!" + s, id="not-base64"),
        pytest.param(lambda s: base64.b64decode(s).hex(), id="hex"),
        pytest.param(lambda s: "", id="empty"),
    ],
)
def test_rsa_refuses_damaged_signatures(rsa_fake, rsa_signer, mangle):
    good = rsa_signer.sign("GET", "/", b"")
    assert_refused(check(rsa_fake, session(rsa_fake), signature=mangle(good)), "invalid_sign")


def test_rsa_refuses_an_hmac_signature(rsa_fake):
    answer = check(rsa_fake, session(rsa_fake), signer=HmacSigner(HMAC_SECRET))
    assert_refused(answer, "invalid_sign")


def test_rsa_checks_the_project_first(rsa_fake, rsa_signer):
    session_id = session(rsa_fake)
    answer = check(rsa_fake, session_id, signer=rsa_signer, project="someone-else")
    assert_refused(answer, "partner_project_not_found")
    assert_refused(check(rsa_fake, session_id, project="x"), "partner_project_not_found")


def test_rsa_with_only_the_public_key(rsa_signer, other_rsa_signer):
    credentials = FakeCredentials(
        bank131_signing_mode="rsa", bank131_rsa_public_key=rsa_signer.public_key_pem()
    )
    with FakeProviders(credentials=credentials) as fake:
        assert_accepted(check(fake, session(fake), signer=rsa_signer))
        assert_refused(check(fake, session(fake), signer=other_rsa_signer), "invalid_sign")
        with pytest.raises(ValueError, match="private key"):
            fake.provider_env()


# -- hmac ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_hmac_accepts_the_shared_secret_signature(hmac_fake, method):
    session_id = session(hmac_fake)
    assert_accepted(check(hmac_fake, session_id, method=method, signer=HmacSigner(HMAC_SECRET)))


@pytest.mark.parametrize(
    "signer",
    [
        pytest.param(None, id="missing"),
        pytest.param(NoSigner(), id="none"),
        pytest.param(HmacSigner("wrong-secret"), id="wrong-secret"),
    ],
)
def test_hmac_refuses_a_missing_or_wrong_signature(hmac_fake, signer):
    session_id = session(hmac_fake)
    assert_refused(check(hmac_fake, session_id, signer=signer), "invalid_sign")
    assert hmac_fake.request_count("bank131", session_id) == 0


def test_hmac_signature_covers_method_path_and_body(hmac_fake):
    signer = HmacSigner(HMAC_SECRET)
    session_id = session(hmac_fake)
    signature = signer.sign("GET", f"/bank131/api/v1.1/check/{session_id}", b"")
    assert_accepted(check(hmac_fake, session_id, signature=signature))
    assert_refused(check(hmac_fake, session_id, method="POST", signature=signature), "invalid_sign")
    assert_refused(check(hmac_fake, session(hmac_fake), signature=signature), "invalid_sign")
    answer = check(hmac_fake, session_id, method="POST", signer=signer, body=b"{}", signed_body=b"")
    assert_refused(answer, "invalid_sign")


def test_hmac_refuses_an_rsa_signature(hmac_fake, rsa_signer):
    assert_refused(check(hmac_fake, session(hmac_fake), signer=rsa_signer), "invalid_sign")


# -- the environment the fakes give the adapter --------------------------------------------


def signer_from_env(env: dict[str, str]) -> NoSigner | RsaSigner | HmacSigner:
    """What the Bank131 adapter builds from these variables."""
    return build_signer(
        env.get("BANK131_SIGNING_MODE", ""),
        rsa_key_pem=env.get("BANK131_RSA_PRIVATE_KEY", ""),
        rsa_key_path=env.get("BANK131_RSA_PRIVATE_KEY_PATH", ""),
        rsa_key_passphrase=env.get("BANK131_RSA_PRIVATE_KEY_PASSPHRASE", ""),
        hmac_secret=env.get("BANK131_SIGNING_SECRET", ""),
    )


@pytest.mark.parametrize(
    ("fixture", "mode", "variables"),
    [
        ("none_fake", SigningMode.NONE, {"BANK131_SIGNING_MODE"}),
        ("rsa_fake", SigningMode.RSA, {"BANK131_SIGNING_MODE", "BANK131_RSA_PRIVATE_KEY"}),
        ("hmac_fake", SigningMode.HMAC, {"BANK131_SIGNING_MODE", "BANK131_SIGNING_SECRET"}),
    ],
)
def test_provider_env_configures_a_signer_the_fake_accepts(request, fixture, mode, variables):
    fake: FakeProviders = request.getfixturevalue(fixture)
    env = fake.provider_env()
    bank131 = {key for key in env if key.startswith("BANK131_")}
    assert bank131 == {"BANK131_BASE_URL", "BANK131_PROJECT", *variables}
    assert env["BANK131_SIGNING_MODE"] == mode.value
    assert all("\n" not in value for value in env.values())  # printable, env-file friendly
    signer = signer_from_env(env)
    assert signer.mode is mode
    for method in ("GET", "POST"):
        session_id = session(fake)
        url = f"{env['BANK131_BASE_URL']}/api/v1.1/check/{session_id}"
        headers = {"X-PARTNER-PROJECT": env["BANK131_PROJECT"]}
        signature = signer.sign(method, urlsplit(url).path, b"")
        if signature is not None:
            headers[SIGN_HEADER] = signature
        assert_accepted(requests.request(method, url, headers=headers, timeout=5))


# -- FakeCredentials -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"bank131_signing_mode": "cryptopro"}, "one of none, rsa, hmac"),
        ({"bank131_signing_mode": "rsa"}, "bank131_rsa_public_key"),
        ({"bank131_signing_mode": "hmac", "bank131_signing_secret": ""}, "secret"),
        ({"bank131_signing_mode": "rsa", "bank131_rsa_public_key": "not a key"}, "not a PEM"),
        ({"bank131_signing_mode": "rsa", "bank131_rsa_private_key": "-----BEGIN x"}, "not an"),
    ],
)
def test_fake_credentials_refuse_an_unusable_signing_setup(settings, message):
    with pytest.raises(ValueError, match=message):
        FakeCredentials(**settings)


def test_fake_credentials_modes_are_case_insensitive():
    assert FakeCredentials(bank131_signing_mode=" HMAC ").bank131_signing_mode == "hmac"


def test_fake_credentials_keep_the_private_key_out_of_repr(rsa_credentials):
    text = repr(rsa_credentials)
    body = rsa_credentials.bank131_rsa_private_key.splitlines()[3]
    assert body not in text and "PRIVATE" not in text
    assert rsa_credentials.bank131_rsa_private_key in rsa_credentials.secret_values()
    assert "rsa" not in rsa_credentials.secret_values()
    assert "" not in FakeCredentials().secret_values()
