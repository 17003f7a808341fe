"""Signed events: who may say a verification was approved (Ed25519 over RFC 8785 bytes).

Anyone who can write to the events Redis could otherwise publish a `to_status:
approved` that no provider gave. Workers sign each event document; readers check
the signature against the public keys they were given and drop what fails.

The scheme, so a subscriber in any language can check it (see also the test
vector in tests/data/event-signature-vector.json):

- The signed document is the event document with a `signing_key_id` member
  (the id of the key that signed it) and without its `signature` member.
- Its canonical bytes are RFC 8785 (JSON Canonicalization Scheme, "JCS") of that
  document, UTF-8. Event documents hold only strings, integers (within
  ±(2**53 - 1), exact in every JSON library), booleans, null, objects and arrays:
  no floats, so no JCS number formatting beyond plain integers is ever needed,
  and any JCS library produces the same bytes. `canonical_bytes` refuses a float.
- `signature` is the Ed25519 (RFC 8032, pure, no pre-hash) signature of those
  bytes, encoded base64url without padding (RFC 4648 §5: 86 characters).
- Key ids name keys, not algorithms (Ed25519 is the only one): `[A-Za-z0-9]`
  then up to 63 of `[A-Za-z0-9._-]`. Rotation: readers hold several public keys
  at once (old and new) while workers switch to the new private key.

Verification is an outcome, not an exception, so a reader can drop and count
by reason (`SignatureOutcome`). Nothing here does I/O; `cryptography` is
imported inside the functions that need it, so importing this module (from an
app-facing package) does not load it. Error messages never quote key material.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from worker.domain.errors import ConfigurationError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "ALGORITHM",
    "CLOUDEVENT_KEY_ID_ATTRIBUTE",
    "KEY_ID_FIELD",
    "MAX_EVENT_BYTES",
    "SIGNATURE_FIELD",
    "CanonicalizationError",
    "EventSigner",
    "EventVerifier",
    "GeneratedKeyPair",
    "KeyMaterialError",
    "SignatureCheck",
    "SignatureOutcome",
    "canonical_bytes",
    "check_key_id",
    "generate_key_pair",
    "loads_event",
    "parse_private_key",
    "parse_public_key",
    "parse_public_key_ring",
    "public_key_base64",
    "signed_bytes",
]

ALGORITHM: Final = "Ed25519"
SIGNATURE_FIELD: Final = "signature"
KEY_ID_FIELD: Final = "signing_key_id"
# CloudEvents extension attribute names are lower-case letters and digits only (spec §3.1.1).
CLOUDEVENT_KEY_ID_ATTRIBUTE: Final = "signingkeyid"

# The largest integer every JSON implementation holds exactly (IEEE 754 doubles; I-JSON).
MAX_SAFE_INTEGER: Final = 2**53 - 1
# Deepest nesting canonicalized (an event document is 1 deep; this only bounds hostile input).
MAX_DEPTH: Final = 32
# Largest event message a reader parses (a real one is ~600 bytes).
MAX_EVENT_BYTES: Final = 64 * 1024

_SIGNATURE_BYTES: Final = 64
_KEY_BYTES: Final = 32
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_B64URL_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{86}")

# RFC 8785 §3.2.2.2: the short escapes; every other control character is \u00xx (lower case).
_SHORT_ESCAPES: Final = {
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
    '"': '\\"',
    "\\": "\\\\",
}
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


class CanonicalizationError(ValueError):
    """A document outside the subset we canonicalize (a float, a non-string key, too deep…)."""


class KeyMaterialError(ConfigurationError):
    """A key or key ring that cannot be used; the message names its source, never its bytes."""


# --------------------------------------------------------------------------- canonical bytes


class _Refused(Exception):
    """Raised where a value is refused; containers on the way up add their key to `path`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _SHORT_ESCAPES.get(char) or f"\\u{ord(char):04x}"


def _string(value: str, out: list[str]) -> None:
    # Lone surrogates (from "\ud800" in JSON) have no UTF-8 form: the final encode refuses them.
    if _NEEDS_ESCAPE.search(value) is None:
        out.append(f'"{value}"')
    else:
        out.append(f'"{_NEEDS_ESCAPE.sub(_escape, value)}"')


def _utf16_units(key: str) -> bytes:
    """Sort key: big-endian UTF-16 bytes compare exactly as RFC 8785's UTF-16 code units."""
    return key.encode("utf-16-be", errors="surrogatepass")


def _sorted_keys(keys: list[str]) -> list[str]:
    # ASCII keys (every event's) sort the same by code point and by UTF-16 code unit.
    if all(key.isascii() for key in keys):
        return sorted(keys)
    return sorted(keys, key=_utf16_units)


def _value(value: object, out: list[str], depth: int) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        _string(value, out)
    elif isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise _Refused("integer outside ±(2**53 - 1), not exact in every JSON library")
        out.append(str(int(value)))
    elif isinstance(value, float):
        raise _Refused(
            "floats are not allowed in a signed event (only strings, integers, booleans, "
            "null, objects and arrays), so every JCS library gives the same bytes"
        )
    elif isinstance(value, Mapping):
        if depth >= MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH}")
        keys = list(value)
        bad = next((k for k in keys if not isinstance(k, str)), None)
        if bad is not None:
            raise _Refused(f"object key of type {type(bad).__name__}")
        out.append("{")
        for i, key in enumerate(_sorted_keys(keys)):
            if i:
                out.append(",")
            _string(key, out)
            out.append(":")
            try:
                _value(value[key], out, depth + 1)
            except _Refused as refused:
                refused.path.append(f".{key}"[:40])
                raise
        out.append("}")
    elif isinstance(value, list | tuple):
        if depth >= MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH}")
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            try:
                _value(item, out, depth + 1)
            except _Refused as refused:
                refused.path.append(f"[{i}]")
                raise
        out.append("]")
    else:
        raise _Refused(f"a {type(value).__name__} is not a JSON value")


def canonical_bytes(document: object) -> bytes:
    """RFC 8785 (JCS) of `document`, UTF-8, for the float-free subset (module docstring).

    Keys are sorted by their UTF-16 code units; strings keep every character
    literally except `"`, `\\` and U+0000..U+001F (short escapes where JSON has
    them, else `\\u00xx`); no whitespace. Raises CanonicalizationError, naming
    where in the document (`$.key[0]`) the refused value is.
    """
    out: list[str] = []
    try:
        _value(document, out, 0)
    except _Refused as refused:
        where = "$" + "".join(reversed(refused.path))
        raise CanonicalizationError(f"{where[:200]}: {refused.reason}") from None
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalizationError("a string holds a lone UTF-16 surrogate") from None


def signed_bytes(document: object) -> bytes:
    """What the signature covers: the canonical bytes of the document without `signature`."""
    if not isinstance(document, Mapping):
        raise CanonicalizationError(f"an event is a JSON object, not {type(document).__name__}")
    return canonical_bytes({k: v for k, v in document.items() if k != SIGNATURE_FIELD})


def loads_event(raw: str | bytes, *, max_bytes: int = MAX_EVENT_BYTES) -> dict[str, Any]:
    """Parse an event message strictly: bounded size, one object, no duplicate keys, no floats.

    Duplicate keys are refused because JSON parsers disagree on which one wins: a
    document must mean the same to every reader that checked its signature.
    Raises CanonicalizationError (a ValueError).
    """
    if len(raw) > max_bytes:
        raise CanonicalizationError(f"event message larger than {max_bytes} bytes")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(items)
        if len(result) != len(items):
            raise CanonicalizationError("duplicate object key")
        return result

    def no_float(text: str) -> object:
        raise CanonicalizationError("floats are not allowed in an event")

    def no_constant(text: str) -> object:
        raise CanonicalizationError(f"{text} is not JSON")

    try:
        document = json.loads(
            raw, object_pairs_hook=pairs, parse_float=no_float, parse_constant=no_constant
        )
    except CanonicalizationError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, absurd nesting
        raise CanonicalizationError(f"not JSON ({type(exc).__name__})") from None
    if not isinstance(document, dict):
        raise CanonicalizationError(f"an event is a JSON object, not {type(document).__name__}")
    return document


# --------------------------------------------------------------------------- keys


def check_key_id(key_id: object, *, source: str = "key id") -> str:
    """A key id as given, if it has the form of one (module docstring); else KeyMaterialError."""
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise KeyMaterialError(
            f"{source}: a key id is a letter or digit then up to 63 of letters, digits, "
            "'.', '_' and '-'"
        )
    return key_id


def _unquote(text: str | bytes) -> bytes:
    """Undo env-file habits: surrounding quotes, and literal `\\n` escapes in PEM text."""
    data = (text.encode() if isinstance(text, str) else bytes(text)).strip()
    if len(data) >= 2 and data[:1] == data[-1:] and data[:1] in (b'"', b"'"):
        data = data[1:-1].strip()
    # Base64 and PEM armour never contain a backslash, so this only undoes escaping.
    return data.replace(b"\\r", b"").replace(b"\\n", b"\n").strip()


def _b64_key(data: bytes, source: str, what: str) -> bytes:
    """32 raw key bytes from standard or url-safe base64, padding optional."""
    compact = b"".join(data.split())
    if not re.fullmatch(rb"[A-Za-z0-9+/_-]+={0,2}", compact):
        raise KeyMaterialError(f"{source}: not PEM and not base64 ({what})")
    padded = compact.rstrip(b"=") + b"=" * (-len(compact.rstrip(b"=")) % 4)
    try:
        raw = base64.b64decode(padded.replace(b"-", b"+").replace(b"_", b"/"), validate=True)
    except (binascii.Error, ValueError):
        raise KeyMaterialError(f"{source}: not valid base64 ({what})") from None
    if len(raw) != _KEY_BYTES:
        raise KeyMaterialError(
            f"{source}: {len(raw)} bytes after base64 decoding; an Ed25519 key is "
            f"{_KEY_BYTES} ({what})"
        )
    return raw


def _pem_label(data: bytes) -> str | None:
    match = re.search(rb"-----BEGIN ([A-Z0-9 ]{1,40})-----", data)
    return match.group(1).decode() if match else None


def parse_private_key(text: str | bytes, *, source: str = "signing key") -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS#8) or its 32-byte seed in base64.

    `source` names the setting in errors (e.g. KYC_EVENT_SIGNING_KEY); the key
    itself is never quoted. Encrypted PEM is refused: use a file only the
    workers can read instead (KYC_EVENT_SIGNING_KEY_FILE).
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = _unquote(text)
    if not data:
        raise KeyMaterialError(f"{source}: empty")
    label = _pem_label(data)
    if label is None:
        return Ed25519PrivateKey.from_private_bytes(
            _b64_key(data, source, "the 32-byte private key seed")
        )
    if "PRIVATE KEY" not in label:
        raise KeyMaterialError(f"{source} holds a {label}, not a private key")
    if label == "ENCRYPTED PRIVATE KEY":
        raise KeyMaterialError(f"{source} is encrypted; give an unencrypted PKCS#8 PEM key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyMaterialError(f"{source} could not be read as a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyMaterialError(f"{source} is not an Ed25519 key; events are signed with Ed25519")
    return key


def parse_public_key(text: str | bytes, *, source: str = "public key") -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo) or its 32 bytes in base64.

    A private key is refused, so a reader is never handed one by mistake.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = _unquote(text)
    if not data:
        raise KeyMaterialError(f"{source}: empty")
    label = _pem_label(data)
    if label is None:
        return Ed25519PublicKey.from_public_bytes(_b64_key(data, source, "the public key"))
    if "PRIVATE KEY" in label:
        raise KeyMaterialError(
            f"{source} is a private key: readers get the public key only (keep the private "
            "key with the workers, and replace this one: it has been exposed)"
        )
    if label != "PUBLIC KEY":
        raise KeyMaterialError(f"{source} holds a {label}, not a PUBLIC KEY")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise KeyMaterialError(f"{source} could not be read as a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyMaterialError(f"{source} is not an Ed25519 key; events are signed with Ed25519")
    return key


_PEM_END = re.compile(r"-----END [A-Z0-9 ]{1,40}-----")


def _ring_entries(text: str) -> Iterable[tuple[int, str, str]]:
    """(entry number, key id, key text) for each `id=key` entry (see parse_public_key_ring)."""
    lines = text.splitlines()
    number = 0
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        for part in line.split(",") if "-----BEGIN" not in line else [line]:
            part = part.strip()
            if not part:
                continue
            number += 1
            key_id, sep, value = part.partition("=")
            if not sep:
                yield number, "", ""
                continue
            value = value.strip()
            if value.startswith("-----BEGIN"):
                block = [value]
                while not _PEM_END.search(block[-1]) and i < len(lines):
                    block.append(lines[i].strip())
                    i += 1
                value = "\n".join(block)
            yield number, key_id.strip(), value


def parse_public_key_ring(
    text: str | bytes, *, source: str = "public keys"
) -> dict[str, Ed25519PublicKey]:
    """Public keys by key id from `id=key` entries (rotation: several at once).

    Entries are separated by commas or new lines; a key is 32 bytes in base64
    or a PEM public key (which then spans lines, in a file); blank lines and
    lines starting with `#` are skipped. Example:
    `2026-11=MCowBQYDK2Vw…=,2027-05=3q2+7w…`. An id given twice, and an empty
    ring, are errors: a reader must know exactly which keys it accepts.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise KeyMaterialError(f"{source}: not UTF-8 text") from None
    body = _unquote(text).decode()
    ring: dict[str, Ed25519PublicKey] = {}
    for number, key_id, value in _ring_entries(body):
        where = f"{source}, entry {number}"
        if not key_id or not value:
            raise KeyMaterialError(f"{where}: expected key-id=public-key")
        check_key_id(key_id, source=where)
        if key_id in ring:
            raise KeyMaterialError(f"{where}: key id {key_id!r} given twice")
        ring[key_id] = parse_public_key(value, source=f"{where} (key id {key_id!r})")
    if not ring:
        raise KeyMaterialError(f"{source}: no keys")
    return ring


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class GeneratedKeyPair:
    """A fresh key pair as text: what a worker and a reader are configured with."""

    key_id: str
    private_key: str  # the 32-byte seed, standard base64 (KYC_EVENT_SIGNING_KEY)
    public_key: str  # 32 bytes, standard base64 (an entry of KYC_EVENT_VERIFY_KEYS)

    @property
    def ring_entry(self) -> str:
        """`key_id=public key`, one entry of a public key ring."""
        return f"{self.key_id}={self.public_key}"

    def __repr__(self) -> str:
        return f"GeneratedKeyPair(key_id={self.key_id!r}, public_key={self.public_key!r})"


def generate_key_pair(key_id: str) -> GeneratedKeyPair:
    """A new random Ed25519 key pair (tests, the devkit, a future `kyc-poller keygen`)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    check_key_id(key_id)
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return GeneratedKeyPair(key_id, _b64(seed), _b64(public))


def public_key_base64(key: Ed25519PublicKey) -> str:
    """The 32 raw bytes of a public key, standard base64 (a ring entry's value)."""
    from cryptography.hazmat.primitives import serialization

    return _b64(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


# --------------------------------------------------------------------------- sign and verify


class EventSigner:
    """Signs event documents with one private key, named by its key id (workers)."""

    __slots__ = ("_key", "key_id")

    def __init__(self, private_key: Ed25519PrivateKey, key_id: str) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        if not isinstance(private_key, Ed25519PrivateKey):
            raise KeyMaterialError("events are signed with an Ed25519 private key")
        self._key = private_key
        self.key_id = check_key_id(key_id, source="signing key id")

    @classmethod
    def from_text(
        cls, private_key: str | bytes, key_id: str, *, source: str = "signing key"
    ) -> EventSigner:
        return cls(parse_private_key(private_key, source=source), key_id)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    def sign(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of `document` with `signing_key_id` set and its `signature` (replaced if any).

        Raises CanonicalizationError for a document outside the canonical subset
        (a float, say): such an event is a bug to fix, never published unsigned.
        """
        unsigned = {k: v for k, v in document.items() if k != SIGNATURE_FIELD}
        unsigned[KEY_ID_FIELD] = self.key_id
        signature = self._key.sign(canonical_bytes(unsigned))
        return {**unsigned, SIGNATURE_FIELD: _b64url(signature)}

    def __repr__(self) -> str:
        return f"EventSigner(key_id={self.key_id!r}, <Ed25519 private key>)"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("EventSigner holds a private key and is not picklable")


class SignatureOutcome(StrEnum):
    """What a reader learns about one event; every outcome but VALID means: drop it."""

    VALID = "valid"
    UNSIGNED = "unsigned"  # no `signature` member
    UNKNOWN_KEY = "unknown_key"  # signed with a key this reader does not hold
    BAD_SIGNATURE = "bad_signature"  # forged, altered, or signed over other bytes
    MALFORMED = "malformed"  # a signature or key id that is not one, or no canonical form


@dataclass(frozen=True)
class SignatureCheck:
    outcome: SignatureOutcome
    key_id: str | None = None
    detail: str = ""  # why, for a log line; never the document's content

    @property
    def valid(self) -> bool:
        return self.outcome is SignatureOutcome.VALID


class EventVerifier:
    """Checks event signatures against public keys by key id (rotation: several at once)."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Mapping[str, Ed25519PublicKey]) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        if not keys:
            raise KeyMaterialError(
                "an event verifier needs at least one public key (turning verification off "
                "is the reader's explicit choice, not an empty key ring)"
            )
        for key_id, key in keys.items():
            check_key_id(key_id)
            if not isinstance(key, Ed25519PublicKey):
                raise KeyMaterialError(f"key id {key_id!r}: not an Ed25519 public key")
        self._keys = dict(keys)

    @classmethod
    def from_text(cls, ring: str | bytes, *, source: str = "public keys") -> EventVerifier:
        return cls(parse_public_key_ring(ring, source=source))

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def verify(self, document: object) -> SignatureCheck:
        """The outcome for one parsed event document (never raises for bad input)."""
        from cryptography.exceptions import InvalidSignature

        if not isinstance(document, Mapping):
            return SignatureCheck(SignatureOutcome.MALFORMED, detail="not a JSON object")
        if SIGNATURE_FIELD not in document:
            return SignatureCheck(SignatureOutcome.UNSIGNED)
        signature = document[SIGNATURE_FIELD]
        key_id = document.get(KEY_ID_FIELD)
        if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
            return SignatureCheck(SignatureOutcome.MALFORMED, detail="no valid signing_key_id")
        if not isinstance(signature, str) or not _B64URL_SIGNATURE.fullmatch(signature):
            return SignatureCheck(
                SignatureOutcome.MALFORMED,
                key_id,
                "signature is not 64 bytes of unpadded base64url",
            )
        key = self._keys.get(key_id)
        if key is None:
            return SignatureCheck(SignatureOutcome.UNKNOWN_KEY, key_id)
        try:
            message = signed_bytes(document)
        except CanonicalizationError as exc:
            return SignatureCheck(SignatureOutcome.MALFORMED, key_id, str(exc)[:200])
        raw = base64.urlsafe_b64decode(signature + "==")
        # 86 base64url characters hold 516 bits: the last 4 must be 0, or two spellings of
        # one signature would both pass (a reader deduping on the text would be fooled).
        if _b64url(raw) != signature:
            return SignatureCheck(SignatureOutcome.MALFORMED, key_id, "non-canonical base64url")
        try:
            key.verify(raw, message)
        except InvalidSignature:
            return SignatureCheck(SignatureOutcome.BAD_SIGNATURE, key_id)
        return SignatureCheck(SignatureOutcome.VALID, key_id)

    def verify_message(self, raw: str | bytes) -> tuple[SignatureCheck, dict[str, Any] | None]:
        """Parse (strictly, `loads_event`) and verify one message; the document if it parsed."""
        try:
            document = loads_event(raw)
        except CanonicalizationError as exc:
            return SignatureCheck(SignatureOutcome.MALFORMED, detail=str(exc)[:200]), None
        return self.verify(document), document

    def __repr__(self) -> str:
        return f"EventVerifier(key_ids={list(self._keys)!r})"
