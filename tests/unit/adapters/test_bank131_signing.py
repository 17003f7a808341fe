"""Bank131 request signing: the modes, the RSA key sources, and every configuration error.

Keys are generated here, at test time; none is stored in the repository.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import pickle

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from worker.adapters.bank131_signing import (
    ENV_HMAC_SECRET,
    ENV_RSA_KEY,
    ENV_RSA_KEY_PASSPHRASE,
    ENV_RSA_KEY_PATH,
    ENV_SIGNING_MODE,
    HmacSigner,
    NoSigner,
    RequestSigner,
    RsaSigner,
    SigningConfigurationError,
    SigningMode,
    build_signer,
)

PASSPHRASE = "correct horse battery staple"
PATH = "/bank131/api/v1.1/check/7"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_of(key, fmt=serialization.PrivateFormat.PKCS8, passphrase: str = "") -> str:
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption).decode()


@pytest.fixture(scope="module")
def pem(key) -> str:
    return pem_of(key)


def verify(key: rsa.RSAPrivateKey, signature: str | None, body: bytes) -> None:
    """Raises InvalidSignature unless `signature` is base64 RSA-SHA256 of `body` by `key`."""
    assert signature is not None
    raw = base64.b64decode(signature, validate=True)
    key.public_key().verify(raw, body, padding.PKCS1v15(), hashes.SHA256())


def key_material(pem_text: str) -> list[str]:
    """Pieces of the key's base64 body, any of which in a message would be a leak."""
    lines = [line for line in pem_text.splitlines() if line and not line.startswith("-----")]
    return lines[1:-1]


# -- modes -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["none", "NONE", " none ", "", None, SigningMode.NONE])
def test_none_is_the_default_and_sends_no_header(mode):
    signer = build_signer(mode, hmac_secret="ignored", rsa_key_path="/ignored")
    assert isinstance(signer, NoSigner)
    assert signer.mode is SigningMode.NONE
    assert signer.sign("GET", PATH, b"") is None
    assert signer.sign("POST", PATH, b"{}") is None


def test_modes_are_a_str_enum():
    assert [mode.value for mode in SigningMode] == ["none", "rsa", "hmac"]
    assert SigningMode("rsa") == "rsa"


@pytest.mark.parametrize("mode", ["RSA", "Rsa", SigningMode.RSA])
def test_rsa_mode_names_are_case_insensitive(mode, pem):
    assert build_signer(mode, rsa_key_pem=pem).mode is SigningMode.RSA


def test_an_unknown_mode_names_the_variable_and_the_choices():
    with pytest.raises(SigningConfigurationError) as info:
        build_signer("cryptopro")
    message = str(info.value)
    assert ENV_SIGNING_MODE in message
    assert "none, rsa, hmac" in message
    assert isinstance(info.value, ValueError)


def test_every_signer_satisfies_the_protocol(pem):
    signers = [NoSigner(), RsaSigner.from_pem(pem), HmacSigner("s")]
    assert all(isinstance(signer, RequestSigner) for signer in signers)


# -- rsa ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_rsa_signs_the_empty_body_verifiably(key, pem, method):
    signer = build_signer("rsa", rsa_key_pem=pem)
    signature = signer.sign(method, PATH, b"")
    verify(key, signature, b"")
    # Standard base64 with padding; 2048-bit key: 256 raw bytes.
    assert signature is not None and len(base64.b64decode(signature)) == 256
    assert signature == base64.b64encode(base64.b64decode(signature)).decode()


def test_rsa_signs_the_body_only(key, pem):
    signer = RsaSigner.from_pem(pem)
    body = b'{"id": "7", "\xc3\xa9": 1}'
    signature = signer.sign("POST", PATH, body)
    verify(key, signature, body)
    # GUESS documented in the module: method and path are not part of the signature.
    assert signer.sign("GET", "/elsewhere", body) == signature
    with pytest.raises(InvalidSignature):
        verify(key, signature, b"")
    assert signer.sign("GET", PATH, b"") != signature


def test_rsa_signature_of_the_empty_body_is_reused_and_equal_to_a_fresh_one(key, pem):
    signer = RsaSigner.from_pem(pem)
    fresh = base64.b64encode(key.sign(b"", padding.PKCS1v15(), hashes.SHA256())).decode()
    assert signer.sign("GET", PATH, b"") == signer.sign("POST", PATH, b"") == fresh


def test_a_signature_from_another_key_does_not_verify(key):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signature = RsaSigner.from_pem(pem_of(other)).sign("GET", PATH, b"")
    with pytest.raises(InvalidSignature):
        verify(key, signature, b"")


def test_rsa_key_from_a_file(key, pem, tmp_path):
    path = tmp_path / "partner.pem"
    path.write_text(pem)
    signer = build_signer("rsa", rsa_key_path=str(path))
    verify(key, signer.sign("GET", PATH, b""), b"")
    verify(key, RsaSigner.from_path(path).sign("GET", PATH, b"x"), b"x")


def test_rsa_key_from_env_text_with_literal_newline_escapes(key, pem):
    one_line = pem.strip().replace("\n", "\\n")
    assert "\n" not in one_line
    signer = build_signer("rsa", rsa_key_pem=one_line)
    verify(key, signer.sign("GET", PATH, b""), b"")


@pytest.mark.parametrize("quote", ['"', "'"])
def test_rsa_key_text_in_quotes_as_env_files_keep_them(key, pem, quote):
    one_line = pem.strip().replace("\n", "\\n")
    signer = build_signer("rsa", rsa_key_pem=f"{quote}{one_line}{quote}\n")
    verify(key, signer.sign("GET", PATH, b""), b"")


def test_rsa_key_text_with_crlf_and_surrounding_blanks(key, pem):
    signer = build_signer("rsa", rsa_key_pem="\n  " + pem.replace("\n", "\r\n") + "  \n")
    verify(key, signer.sign("GET", PATH, b""), b"")


def test_rsa_key_in_pkcs1_format(key):
    pkcs1 = pem_of(key, serialization.PrivateFormat.TraditionalOpenSSL)
    assert pkcs1.startswith("-----BEGIN RSA PRIVATE KEY-----")
    verify(key, build_signer("rsa", rsa_key_pem=pkcs1).sign("GET", PATH, b""), b"")


@pytest.mark.parametrize(
    "fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL]
)
def test_encrypted_rsa_key_with_its_passphrase(key, tmp_path, fmt):
    encrypted = pem_of(key, fmt, PASSPHRASE)
    assert "ENCRYPTED" in encrypted
    signer = build_signer("rsa", rsa_key_pem=encrypted, rsa_key_passphrase=PASSPHRASE)
    verify(key, signer.sign("GET", PATH, b""), b"")
    path = tmp_path / "encrypted.pem"
    path.write_text(encrypted)
    signer = build_signer("rsa", rsa_key_path=str(path), rsa_key_passphrase=PASSPHRASE)
    verify(key, signer.sign("POST", PATH, b""), b"")


def test_public_key_pem_is_the_matching_public_key(key, pem):
    public = serialization.load_pem_public_key(RsaSigner.from_pem(pem).public_key_pem().encode())
    assert public.public_numbers() == key.public_key().public_numbers()


def test_rsa_signer_accepts_a_key_object_and_reports_its_size(key):
    signer = RsaSigner(key)
    assert signer.key_size == 2048
    verify(key, signer.sign("GET", PATH, b""), b"")


# -- rsa configuration errors ---------------------------------------------------------


def config_error(**settings) -> str:
    with pytest.raises(SigningConfigurationError) as info:
        build_signer("rsa", **settings)
    error = info.value
    # No chained exception (whose text or locals could carry the key) shows in tracebacks.
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    return str(info.value)


def test_rsa_without_a_key_names_both_variables():
    message = config_error()
    assert ENV_RSA_KEY in message and ENV_RSA_KEY_PATH in message
    assert ENV_SIGNING_MODE in message


def test_rsa_with_both_key_sources_is_refused(pem, tmp_path):
    path = tmp_path / "k.pem"
    path.write_text(pem)
    message = config_error(rsa_key_pem=pem, rsa_key_path=str(path))
    assert "only one" in message and ENV_RSA_KEY in message and ENV_RSA_KEY_PATH in message


def test_a_missing_key_file_names_the_path_variable(tmp_path):
    missing = tmp_path / "nope.pem"
    message = config_error(rsa_key_path=str(missing))
    assert ENV_RSA_KEY_PATH in message and str(missing) in message


def test_a_directory_as_key_file_is_refused(tmp_path):
    message = config_error(rsa_key_path=str(tmp_path))
    assert ENV_RSA_KEY_PATH in message


def test_an_oversized_key_file_is_refused(tmp_path):
    path = tmp_path / "huge.pem"
    path.write_bytes(b"A" * (70 * 1024))
    assert "larger" in config_error(rsa_key_path=str(path))


def test_a_path_given_as_the_key_text_points_at_the_path_variable(tmp_path):
    message = config_error(rsa_key_pem=str(tmp_path / "partner.pem"))
    assert ENV_RSA_KEY in message and "not a PEM private key" in message
    assert ENV_RSA_KEY_PATH in message


def test_damaged_pem_is_refused_without_quoting_it(pem):
    lines = pem.splitlines()
    damaged = "\n".join([lines[0], *lines[1:5], *lines[8:]])
    message = config_error(rsa_key_pem=damaged)
    assert ENV_RSA_KEY in message and "could not be read" in message
    for piece in key_material(pem):
        assert piece not in message


def test_damaged_pem_file_is_refused_naming_the_file(pem, tmp_path):
    path = tmp_path / "damaged.pem"
    path.write_text(pem.replace(key_material(pem)[3], "AAAA"))
    message = config_error(rsa_key_path=str(path))
    assert ENV_RSA_KEY_PATH in message and str(path) in message


def test_a_public_key_is_not_a_private_key(key):
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    message = config_error(rsa_key_pem=public.decode())
    assert "PUBLIC KEY" in message and "private" in message


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(lambda: ec.generate_private_key(ec.SECP256R1()), id="ec"),
        pytest.param(ed25519.Ed25519PrivateKey.generate, id="ed25519"),
    ],
)
def test_a_non_rsa_key_is_refused(other, tmp_path):
    text = pem_of(other())
    assert "non-RSA" in config_error(rsa_key_pem=text)
    path = tmp_path / "other.pem"
    path.write_text(text)
    assert "non-RSA" in config_error(rsa_key_path=str(path))


def test_an_openssh_key_is_refused_with_a_hint(key):
    openssh = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    assert "OpenSSH" in config_error(rsa_key_pem=openssh)


def test_an_encrypted_key_without_passphrase_names_the_passphrase_variable(key, tmp_path):
    encrypted = pem_of(key, passphrase=PASSPHRASE)
    message = config_error(rsa_key_pem=encrypted)
    assert "encrypted" in message and ENV_RSA_KEY_PASSPHRASE in message
    path = tmp_path / "encrypted.pem"
    path.write_text(encrypted)
    assert ENV_RSA_KEY_PASSPHRASE in config_error(rsa_key_path=str(path))


def test_a_wrong_passphrase_is_refused_without_quoting_it(key):
    encrypted = pem_of(key, passphrase=PASSPHRASE)
    message = config_error(rsa_key_pem=encrypted, rsa_key_passphrase="wrong-passphrase-123")
    assert ENV_RSA_KEY_PASSPHRASE in message
    assert "wrong-passphrase-123" not in message and PASSPHRASE not in message


def test_a_passphrase_for_an_unencrypted_key_is_refused(pem):
    message = config_error(rsa_key_pem=pem, rsa_key_passphrase=PASSPHRASE)
    assert "not encrypted" in message and ENV_RSA_KEY_PASSPHRASE in message
    assert PASSPHRASE not in message


def test_rsa_signer_refuses_a_non_rsa_key_object():
    with pytest.raises(SigningConfigurationError):
        RsaSigner(ec.generate_private_key(ec.SECP256R1()))  # type: ignore[arg-type]


# -- hmac -----------------------------------------------------------------------------


def test_hmac_known_answer():
    signer = build_signer("hmac", hmac_secret="bank131-test-secret")
    # printf 'GET\n/bank131/api/v1.1/check/7\n' | openssl dgst -sha256 -hmac bank131-test-secret
    expected = "445671426c88a637af025d0b775d04522fbd0033056018f2941ef327cda397fc"
    computed = hmac.new(
        b"bank131-test-secret", b"GET\n/bank131/api/v1.1/check/7\n", hashlib.sha256
    ).hexdigest()
    assert signer.sign("GET", PATH, b"") == computed
    assert signer.sign("get", PATH, b"") == computed  # the method is upper-cased
    assert computed == expected


def test_hmac_covers_method_path_and_body():
    signer = HmacSigner("s3cret")
    base = signer.sign("GET", PATH, b"")
    assert signer.sign("POST", PATH, b"") != base
    assert signer.sign("GET", PATH + "8", b"") != base
    assert signer.sign("GET", PATH, b"{}") != base
    assert HmacSigner("other").sign("GET", PATH, b"") != base
    assert signer.mode is SigningMode.HMAC


def test_hmac_without_a_secret_names_the_secret_variable():
    with pytest.raises(SigningConfigurationError) as info:
        build_signer("hmac")
    assert ENV_HMAC_SECRET in str(info.value)


# -- nothing leaks ----------------------------------------------------------------------


def test_reprs_and_strs_carry_no_key_material(key, pem):
    encrypted = pem_of(key, passphrase=PASSPHRASE)
    signers = [
        build_signer("rsa", rsa_key_pem=pem),
        build_signer("rsa", rsa_key_pem=encrypted, rsa_key_passphrase=PASSPHRASE),
        build_signer("hmac", hmac_secret="very-secret-hmac-key"),
        build_signer("none"),
    ]
    for signer in signers:
        for text in (repr(signer), str(signer), f"{signer!r}", f"{[signer]}"):
            for piece in key_material(pem):
                assert piece not in text
            assert PASSPHRASE not in text
            assert "very-secret-hmac-key" not in text
    assert repr(signers[0]) == "RsaSigner(<2048-bit RSA private key>)"
    assert repr(signers[2]) == "HmacSigner(<secret>)"
    assert not hasattr(signers[0], "__dict__") and not hasattr(signers[2], "__dict__")


@pytest.mark.parametrize("mode", ["rsa", "hmac"])
def test_signers_holding_secrets_are_not_picklable(mode, pem):
    signer = build_signer(mode, rsa_key_pem=pem, hmac_secret="very-secret-hmac-key")
    with pytest.raises(TypeError):
        pickle.dumps(signer)
