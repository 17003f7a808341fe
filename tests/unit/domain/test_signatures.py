"""Event signatures: RFC 8785 canonical bytes, Ed25519 sign/verify, key material, the vector."""

import base64
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.api import signing_keys as event_keys
from worker.domain.errors import ConfigurationError
from worker.domain.signatures import (
    KEY_ID_FIELD,
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    SIGNATURE_FIELD,
    CanonicalizationError,
    EventSigner,
    EventVerifier,
    KeyMaterialError,
    SignatureOutcome,
    canonical_bytes,
    generate_key_pair,
    loads_event,
    parse_private_key,
    parse_public_key,
    parse_public_key_ring,
    public_key_base64,
    signed_bytes,
)

ROOT = Path(__file__).resolve().parents[3]
VECTOR = json.loads((ROOT / "tests/data/event-signature-vector.json").read_text())

EVENT = {
    "event_id": "1b0c5f0e-7a55-4d53-9a8f-5f1f3d0b8e6a",
    "event_type": "verification.status_changed",
    "schema_version": 1,
    "verification_id": 42,
    "verification_version": 5,
    "provider": "gu1",
    "external_id": "val-123",
    "verification_type": None,
    "from_status": "in_review",
    "to_status": "approved",
    "terminal": True,
    "provider_status": "approved",
    "reason": "provider",
    "error_code": None,
    "related_external_id": None,
    "occurred_at": "2026-11-23T12:00:00.123456+00:00",
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def raw_private(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def pair():
    key = ed25519.Ed25519PrivateKey.generate()
    return EventSigner(key, "k-2026-11"), EventVerifier({"k-2026-11": key.public_key()})


# ---------------------------------------------------------------- import cost


@pytest.mark.parametrize("module", ["worker.domain.signatures", "worker.api.signing_keys"])
def test_importing_does_not_load_cryptography(module):
    # (redis-py, which worker.api loads, imports the bare `cryptography` package to learn
    # whether it is installed: none of its primitives, `cryptography.hazmat`.)
    code = (
        f"import sys, {module}; "
        "print(any(m.startswith('cryptography.hazmat') for m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "False"


# ---------------------------------------------------------------- RFC 8785


def test_keys_sort_by_utf16_code_units_as_rfc_8785_shows():
    # RFC 8785 §3.2.3: the emoji (surrogates D83D DE00) sorts before U+FB33, unlike code points.
    document = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    values = list(json.loads(canonical_bytes(document)).values())
    assert values == [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",
        "Hebrew Letter Dalet With Dagesh",
    ]


def test_strings_are_escaped_as_rfc_8785_shows():
    # RFC 8785 §3.2.2.2's example: only ", \ and controls are escaped, controls in lower case.
    text = "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/"
    assert canonical_bytes(text) == '"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"'.encode()


def test_every_control_character_has_its_one_escape():
    short = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}
    for code in range(0x20):
        expected = short.get(code, f"\\u{code:04x}")
        assert canonical_bytes(chr(code)) == f'"{expected}"'.encode()
    # DEL, U+2028 and non-ASCII stay literal (UTF-8); "/" is not escaped.
    assert canonical_bytes("\x7f\u2028é/") == '"\x7f\u2028é/"'.encode()


def test_literals_integers_arrays_and_no_whitespace():
    document = {"b": [1, -2, 0, True, False, None], "a": {"y": (), "x": {}}}
    assert canonical_bytes(document) == b'{"a":{"x":{},"y":[]},"b":[1,-2,0,true,false,null]}'
    assert canonical_bytes(MAX_SAFE_INTEGER) == b"9007199254740991"
    assert canonical_bytes(-MAX_SAFE_INTEGER) == b"-9007199254740991"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"amount": 1.5}, "floats are not allowed"),
        ({"amount": 1.0}, "floats are not allowed"),
        ({"n": MAX_SAFE_INTEGER + 1}, r"2\*\*53"),
        ({"n": -MAX_SAFE_INTEGER - 1}, r"2\*\*53"),
        ({1: "x"}, "object key of type int"),
        ({"s": "\ud800"}, "lone UTF-16 surrogate"),
        ({"b": b"bytes"}, "bytes is not a JSON value"),
        ({"s": {1, 2}}, "set is not a JSON value"),
    ],
)
def test_what_is_outside_the_subset_is_refused_with_the_reason(document, message):
    with pytest.raises(CanonicalizationError, match=message):
        canonical_bytes(document)


def test_the_error_says_where_the_refused_value_is():
    with pytest.raises(CanonicalizationError, match=r"^\$\.data\.scores\[1\]: floats"):
        canonical_bytes({"data": {"scores": [1, 0.5]}})


def test_nesting_is_bounded():
    deep: object = "leaf"
    for _ in range(MAX_DEPTH):
        deep = [deep]
    canonical_bytes(deep)  # MAX_DEPTH containers inside each other: fine
    with pytest.raises(CanonicalizationError, match="nested deeper"):
        canonical_bytes({"x": deep})


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"])), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_canonical_bytes_agree_with_an_independent_rfc_8785_implementation(value):
    # rfc8785 (Trail of Bits, a dev dependency only): another implementation of the RFC.
    assert canonical_bytes(value) == rfc8785.dumps(value)


# ---------------------------------------------------------------- the test vector


def test_the_vector_key_pair_is_rfc_8032_test_1():
    seed = base64.b64decode(VECTOR["private_key_seed_base64"])
    public = base64.b64decode(VECTOR["public_key_base64"])
    assert seed.hex() == "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
    assert public.hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert (
        public_key_base64(parse_private_key(VECTOR["private_key_seed_base64"]).public_key())
        == (VECTOR["public_key_base64"])
    )


@pytest.mark.parametrize("case", VECTOR["cases"], ids=lambda case: case["name"])
def test_the_vector_checks_out(case):
    document = loads_event(case["message"])
    assert document[KEY_ID_FIELD] == VECTOR["key_id"]
    canonical = signed_bytes(document)
    assert canonical == base64.b64decode(case["canonical_bytes_base64"])
    assert canonical.decode() == case["canonical_bytes_utf8"]
    assert canonical == rfc8785.dumps({k: v for k, v in document.items() if k != "signature"})
    # Ed25519 is deterministic: signing again gives the vector's signature.
    signer = EventSigner.from_text(VECTOR["private_key_seed_base64"], VECTOR["key_id"])
    assert signer.sign(document)[SIGNATURE_FIELD] == case["signature"] == document["signature"]
    # And a bare RFC 8032 check, without our verifier: what a subscriber elsewhere does.
    public = ed25519.Ed25519PublicKey.from_public_bytes(
        base64.b64decode(VECTOR["public_key_base64"])
    )
    public.verify(base64.urlsafe_b64decode(case["signature"] + "=="), canonical)
    verifier = EventVerifier.from_text(f"{VECTOR['key_id']}={VECTOR['public_key_base64']}")
    assert verifier.verify_message(case["message"])[0].outcome is SignatureOutcome.VALID


# ---------------------------------------------------------------- sign and verify


def test_a_signed_event_verifies_and_keeps_its_content(pair):
    signer, verifier = pair
    signed = signer.sign(EVENT)
    assert {k: v for k, v in signed.items() if k not in (SIGNATURE_FIELD, KEY_ID_FIELD)} == EVENT
    assert signed[KEY_ID_FIELD] == "k-2026-11"
    assert len(signed[SIGNATURE_FIELD]) == 86 and "=" not in signed[SIGNATURE_FIELD]
    check = verifier.verify(signed)
    assert check.valid and check.key_id == "k-2026-11"
    # The wire form does not matter: any key order, any JSON spelling of the same document.
    message = json.dumps(signed, ensure_ascii=True, indent=1)
    assert verifier.verify_message(message)[0].valid
    assert verifier.verify_message(message)[1] == signed


def test_signing_again_replaces_the_signature(pair):
    signer, verifier = pair
    resigned = signer.sign({**signer.sign(EVENT), "to_status": "rejected"})
    assert resigned["to_status"] == "rejected"
    assert verifier.verify(resigned).valid


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("to_status", "approved_"),
        ("verification_id", 43),
        ("terminal", False),
        ("error_code", "not_found"),
        ("extra", "added"),
    ],
)
def test_a_changed_event_is_a_bad_signature(pair, field, value):
    signer, verifier = pair
    forged = {**signer.sign({**EVENT, "to_status": "rejected"}), field: value}
    assert verifier.verify(forged).outcome is SignatureOutcome.BAD_SIGNATURE


def test_a_removed_field_is_a_bad_signature(pair):
    signer, verifier = pair
    signed = signer.sign(EVENT)
    del signed["error_code"]
    assert verifier.verify(signed).outcome is SignatureOutcome.BAD_SIGNATURE


def test_an_unsigned_event_is_unsigned(pair):
    _signer, verifier = pair
    assert verifier.verify(EVENT).outcome is SignatureOutcome.UNSIGNED
    assert verifier.verify({**EVENT, KEY_ID_FIELD: "k-2026-11"}).outcome is (
        SignatureOutcome.UNSIGNED
    )


def test_a_forgery_with_another_key_is_caught(pair):
    _signer, verifier = pair
    intruder = EventSigner(ed25519.Ed25519PrivateKey.generate(), "k-2026-11")
    assert verifier.verify(intruder.sign(EVENT)).outcome is SignatureOutcome.BAD_SIGNATURE
    stranger = EventSigner(ed25519.Ed25519PrivateKey.generate(), "someone-else")
    check = verifier.verify(stranger.sign(EVENT))
    assert check.outcome is SignatureOutcome.UNKNOWN_KEY and check.key_id == "someone-else"


@pytest.mark.parametrize(
    "damage",
    [
        {SIGNATURE_FIELD: ""},
        {SIGNATURE_FIELD: 12},
        {SIGNATURE_FIELD: "A" * 85},
        {SIGNATURE_FIELD: "A" * 87},
        {SIGNATURE_FIELD: "A" * 84 + "=="},
        {SIGNATURE_FIELD: "+" * 86},
        {KEY_ID_FIELD: None},
        {KEY_ID_FIELD: "bad id"},
        {KEY_ID_FIELD: 7},
    ],
)
def test_a_signature_or_key_id_that_is_not_one_is_malformed(pair, damage):
    signer, verifier = pair
    assert verifier.verify({**signer.sign(EVENT), **damage}).outcome is SignatureOutcome.MALFORMED


def test_a_second_spelling_of_the_same_signature_is_malformed(pair):
    signer, verifier = pair
    signed = signer.sign(EVENT)
    last = signed[SIGNATURE_FIELD][-1]
    # The last character carries 2 signature bits and 4 padding bits that must be 0.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    other = alphabet[alphabet.index(last) + 1]
    respelled = {**signed, SIGNATURE_FIELD: signed[SIGNATURE_FIELD][:-1] + other}
    check = verifier.verify(respelled)
    assert check.outcome is SignatureOutcome.MALFORMED and "non-canonical" in check.detail


def test_a_document_that_cannot_be_canonicalized_is_malformed_not_an_error(pair):
    signer, verifier = pair
    check = verifier.verify({**signer.sign(EVENT), "amount": 1.5})
    assert check.outcome is SignatureOutcome.MALFORMED and "float" in check.detail
    assert verifier.verify(["not", "a", "document"]).outcome is SignatureOutcome.MALFORMED


def test_the_signer_refuses_a_float_instead_of_publishing_it():
    signer = EventSigner(ed25519.Ed25519PrivateKey.generate(), "k")
    with pytest.raises(CanonicalizationError, match="floats are not allowed"):
        signer.sign({**EVENT, "score": 0.5})


@pytest.mark.parametrize(
    ("message", "why"),
    [
        ('{"a":1,"a":2}', "duplicate"),
        ('{"a":NaN}', "NaN"),
        ('{"a":1e3}', "float"),
        ('{"a":1.0}', "float"),
        ("[1,2]", "object"),
        ("{", "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        ("[" * 100_000 + "]" * 100_000, "larger than"),
        ("[" * 20_000 + "]" * 20_000, "not JSON"),
        ('{"a":"' + "x" * 70_000 + '"}', "larger than"),
    ],
)
def test_messages_are_parsed_strictly_and_bounded(pair, message, why):
    _signer, verifier = pair
    check, document = verifier.verify_message(message)
    assert check.outcome is SignatureOutcome.MALFORMED and why in check.detail
    assert document is None


def test_rotation_accepts_old_and_new_keys_at_once():
    old, new = generate_key_pair("2026-11"), generate_key_pair("2027-05")
    both = EventVerifier.from_text(f"{old.ring_entry},{new.ring_entry}")
    old_event = EventSigner.from_text(old.private_key, old.key_id).sign(EVENT)
    new_event = EventSigner.from_text(new.private_key, new.key_id).sign(EVENT)
    assert both.verify(old_event).valid and both.verify(new_event).valid
    assert both.key_ids == ("2026-11", "2027-05")
    # Once the old key is retired, its events are from an unknown key.
    only_new = EventVerifier.from_text(new.ring_entry)
    assert only_new.verify(old_event).outcome is SignatureOutcome.UNKNOWN_KEY
    assert only_new.verify(new_event).valid


def test_an_empty_verifier_is_refused():
    with pytest.raises(KeyMaterialError, match="at least one public key"):
        EventVerifier({})


def test_keys_never_show_in_repr_and_signers_are_not_picklable():
    pair_ = generate_key_pair("k1")
    signer = EventSigner.from_text(pair_.private_key, "k1")
    for shown in (repr(signer), str(signer), repr(pair_)):
        assert pair_.private_key not in shown
    assert pair_.public_key in repr(pair_)
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(signer)


# ---------------------------------------------------------------- key material


def test_private_keys_from_pem_or_base64_seed():
    key = ed25519.Ed25519PrivateKey.generate()
    seed = raw_private(key)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    spellings = [
        pem,
        pem.encode(),
        '"' + pem.strip().replace("\n", "\\n") + '"',  # an env file's one-line form
        b64(seed),
        base64.urlsafe_b64encode(seed).decode().rstrip("="),
        f"  {b64(seed)}\n",
    ]
    for text in spellings:
        assert raw_private(parse_private_key(text)) == seed


def test_public_keys_from_pem_or_base64():
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    for text in (pem, b64(raw), base64.urlsafe_b64encode(raw).decode().rstrip("=")):
        assert public_key_base64(parse_public_key(text)) == b64(raw)


def secret_texts():
    """Key material that must never appear in an error message."""
    ed = ed25519.Ed25519PrivateKey.generate()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pkcs8 = serialization.PrivateFormat.PKCS8
    return {
        "ed25519 pem": ed.private_bytes(
            serialization.Encoding.PEM, pkcs8, serialization.NoEncryption()
        ).decode(),
        "rsa pem": rsa_key.private_bytes(
            serialization.Encoding.PEM, pkcs8, serialization.NoEncryption()
        ).decode(),
        "encrypted pem": ed.private_bytes(
            serialization.Encoding.PEM, pkcs8, serialization.BestAvailableEncryption(b"pw")
        ).decode(),
        "31 bytes": b64(raw_private(ed)[:31]),
        "33 bytes": b64(raw_private(ed) + b"x"),
    }


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("rsa pem", "not an Ed25519 key"),
        ("encrypted pem", "encrypted"),
        ("31 bytes", "31 bytes"),
        ("33 bytes", "33 bytes"),
    ],
)
def test_unusable_private_keys_are_refused_without_quoting_them(name, message):
    text = secret_texts()[name]
    with pytest.raises(KeyMaterialError, match=message) as caught:
        parse_private_key(text, source="KYC_EVENT_SIGNING_KEY")
    shown = str(caught.value)
    assert "KYC_EVENT_SIGNING_KEY" in shown
    assert text.strip() not in shown
    assert not any(line in shown for line in text.splitlines()[1:-1] if len(line) > 8)
    # No chained exception (from cryptography or base64) that could carry the bytes.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_a_private_key_handed_to_a_reader_is_refused_without_quoting_it():
    text = secret_texts()["ed25519 pem"]
    with pytest.raises(KeyMaterialError, match="is a private key") as caught:
        parse_public_key(text, source="KYC_EVENT_VERIFY_KEYS")
    assert not any(line in str(caught.value) for line in text.splitlines()[1:-1])
    with pytest.raises(KeyMaterialError, match="is a private key"):
        parse_public_key_ring("k1=" + text.replace("\n", "\\n"))


@pytest.mark.parametrize("text", ["", "   ", "not base64 at all!", "-----BEGIN CERTIFICATE-----"])
def test_garbage_is_not_a_key(text):
    with pytest.raises(KeyMaterialError):
        parse_private_key(text)
    with pytest.raises(KeyMaterialError):
        parse_public_key(text)
    assert issubclass(KeyMaterialError, ConfigurationError)


def test_a_ring_from_commas_lines_comments_and_pem_blocks():
    keys = {f"k{i}": ed25519.Ed25519PrivateKey.generate().public_key() for i in range(4)}
    raw = {kid: public_key_base64(key) for kid, key in keys.items()}
    pem = (
        keys["k3"]
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    text = f"# rotation of 2027-05\nk0={raw['k0']}, k1={raw['k1']}\n\nk2 = {raw['k2']}\nk3={pem}"
    ring = parse_public_key_ring(text)
    assert {kid: public_key_base64(key) for kid, key in ring.items()} == raw
    assert list(parse_public_key_ring(f"k0={raw['k0']},k1={raw['k1']}")) == ["k0", "k1"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no keys"),
        ("# nothing\n", "no keys"),
        ("k1", "expected key-id=public-key"),
        ("k1=", "expected key-id=public-key"),
        ("bad id=AAAA", "a key id is"),
        ("k1=AAAA", "3 bytes"),
    ],
)
def test_a_bad_ring_says_which_entry(text, message):
    with pytest.raises(KeyMaterialError, match=message):
        parse_public_key_ring(text, source="KYC_EVENT_VERIFY_KEYS")


def test_a_key_id_given_twice_is_refused():
    entry = generate_key_pair("k1").ring_entry
    with pytest.raises(KeyMaterialError, match=r"entry 2.*given twice"):
        parse_public_key_ring(f"{entry},{entry}")


def test_key_ids_have_a_bounded_form():
    for good in ("a", "2026-11", "prod.k_1", "A" * 64):
        generate_key_pair(good)
    for bad in ("", "-a", "a b", "a=b", "a,b", "A" * 65, "é"):
        with pytest.raises(KeyMaterialError):
            generate_key_pair(bad)


# ---------------------------------------------------------------- from the environment


def test_no_signing_key_configured_means_no_signer():
    assert event_keys.signer_from_env({}) is None


def test_the_signer_from_a_variable_or_a_file(tmp_path):
    made = generate_key_pair("2026-11")
    from_text = event_keys.signer_from_env(
        {"KYC_EVENT_SIGNING_KEY": made.private_key, "KYC_EVENT_SIGNING_KEY_ID": "2026-11"}
    )
    path = tmp_path / "signing.key"
    path.write_text(made.private_key + "\n")
    from_file = event_keys.signer_from_env(
        {"KYC_EVENT_SIGNING_KEY_FILE": str(path), "KYC_EVENT_SIGNING_KEY_ID": "2026-11"}
    )
    verifier = EventVerifier.from_text(made.ring_entry)
    for signer in (from_text, from_file):
        assert signer is not None and signer.key_id == "2026-11"
        assert verifier.verify(signer.sign(EVENT)).valid


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KYC_EVENT_SIGNING_KEY": "x"}, "KYC_EVENT_SIGNING_KEY_ID must name it"),
        ({"KYC_EVENT_SIGNING_KEY_ID": "k"}, "is set but no key"),
        (
            {"KYC_EVENT_SIGNING_KEY": "x", "KYC_EVENT_SIGNING_KEY_FILE": "/x"},
            "set only one of KYC_EVENT_SIGNING_KEY and KYC_EVENT_SIGNING_KEY_FILE",
        ),
        (
            {"KYC_EVENT_SIGNING_KEY_FILE": "/nonexistent/k", "KYC_EVENT_SIGNING_KEY_ID": "k"},
            "no such file '/nonexistent/k'",
        ),
    ],
)
def test_signing_settings_that_cannot_work_say_what_to_fix(env, message):
    with pytest.raises(KeyMaterialError, match=message):
        event_keys.signer_from_env(env)


def test_a_key_file_is_read_bounded(tmp_path):
    path = tmp_path / "huge.key"
    path.write_bytes(b"A" * (event_keys.MAX_KEY_FILE_BYTES + 1))
    with pytest.raises(KeyMaterialError, match="larger than"):
        event_keys.signer_from_env(
            {"KYC_EVENT_SIGNING_KEY_FILE": str(path), "KYC_EVENT_SIGNING_KEY_ID": "k"}
        )
    with pytest.raises(KeyMaterialError, match="cannot read"):
        event_keys.read_key_file(str(tmp_path), source="KYC_EVENT_VERIFY_KEYS_FILE")


def test_a_reader_without_keys_is_refused_rather_than_trusting_everything():
    with pytest.raises(KeyMaterialError, match="no public keys to verify events"):
        event_keys.verifier_from_env({})


def test_the_verifier_from_a_variable_or_a_file(tmp_path):
    old, new = generate_key_pair("old"), generate_key_pair("new")
    path = tmp_path / "verify.keys"
    path.write_text(f"# accepted keys\n{old.ring_entry}\n{new.ring_entry}\n")
    for env in (
        {"KYC_EVENT_VERIFY_KEYS": f"{old.ring_entry},{new.ring_entry}"},
        {"KYC_EVENT_VERIFY_KEYS_FILE": str(path)},
    ):
        assert event_keys.verifier_from_env(env).key_ids == ("old", "new")
    with pytest.raises(KeyMaterialError, match="set only one"):
        event_keys.verifier_from_env(
            {"KYC_EVENT_VERIFY_KEYS": old.ring_entry, "KYC_EVENT_VERIFY_KEYS_FILE": str(path)}
        )
