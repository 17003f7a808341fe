"""How Bank131 status checks are signed: `none` (the default), `rsa`, or `hmac`.

Pure code, no HTTP: a signer turns (method, path, body) into the value of the
`X-PARTNER-SIGN` header, or None for no header. The adapter builds one signer
at start-up with `build_signer` and calls `sign` for every request.

Modes (BANK131_SIGNING_MODE):

- `none`: no signature. Bank131's KYC status-check documents show the request
  with `X-PARTNER-PROJECT` only, so this is the default. (If Bank131 answers
  `invalid_sign` to unsigned status checks, switch to `rsa`.)
- `rsa`: Bank131's general request signing, from their public developer pages:
  `X-PARTNER-SIGN` carries a signature of the request body made with the
  partner's RSA private key (Bank131 holds the public key). Here: RSASSA-PKCS1-v1_5
  with SHA-256 over the raw body bytes, standard base64 (with padding).
  The key is a PEM private key (PKCS#8 "PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY",
  unencrypted or encrypted with BANK131_RSA_PRIVATE_KEY_PASSPHRASE), given as text
  (BANK131_RSA_PRIVATE_KEY; literal `\\n` escapes, as env files often carry them,
  are turned into newlines, and quotes around the value dropped) or as a file
  (BANK131_RSA_PRIVATE_KEY_PATH).
  GUESS: the padding (PKCS#1 v1.5, not PSS), the hash (SHA-256) and the encoding
  (standard base64, not URL-safe, not hex) are not written in the documents this
  project has; they are the common choice for this kind of scheme.
  GUESS: only the body is signed, not the method or the path, and the status
  check's empty body is signed as it is (the signature of zero bytes).
  PKCS#1 v1.5 signatures are deterministic, so the empty body's signature is
  computed once, when the signer is built, and reused.
- `hmac`: NOT Bank131's scheme. A shared-secret scheme of kyc-poller and its
  fake providers (the scheme the adapter used before the modes existed), kept
  for tests and local fleets: hex HMAC-SHA256(BANK131_SIGNING_SECRET,
  f"{METHOD}\\n{path}\\n{body}") over the request path as sent (no query string).

Variables of the modes not selected are ignored. Keys and secrets never appear
in a signer's repr/str, nor in the messages of `SigningConfigurationError`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from enum import StrEnum
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "ENV_HMAC_SECRET",
    "ENV_RSA_KEY",
    "ENV_RSA_KEY_PASSPHRASE",
    "ENV_RSA_KEY_PATH",
    "ENV_SIGNING_MODE",
    "SIGN_HEADER",
    "HmacSigner",
    "NoSigner",
    "RequestSigner",
    "RsaSigner",
    "SigningConfigurationError",
    "SigningMode",
    "build_signer",
]

SIGN_HEADER: Final = "X-PARTNER-SIGN"

ENV_SIGNING_MODE: Final = "BANK131_SIGNING_MODE"
ENV_RSA_KEY: Final = "BANK131_RSA_PRIVATE_KEY"
ENV_RSA_KEY_PATH: Final = "BANK131_RSA_PRIVATE_KEY_PATH"
ENV_RSA_KEY_PASSPHRASE: Final = "BANK131_RSA_PRIVATE_KEY_PASSPHRASE"
ENV_HMAC_SECRET: Final = "BANK131_SIGNING_SECRET"

# A PEM file larger than this is not a private key (an RSA-16384 key is ~13 KB).
MAX_PEM_BYTES: Final = 64 * 1024
_PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,40})-----")


class SigningMode(StrEnum):
    """BANK131_SIGNING_MODE."""

    NONE = "none"
    RSA = "rsa"
    HMAC = "hmac"


class SigningConfigurationError(ValueError):
    """The signing settings are missing or unusable; the message names the variable to fix.

    Never carries key material or secrets.
    """


@runtime_checkable
class RequestSigner(Protocol):
    """Signs one request: the X-PARTNER-SIGN value, or None for no header."""

    @property
    def mode(self) -> SigningMode: ...

    def sign(self, method: str, path: str, body: bytes) -> str | None: ...


class NoSigner:
    """Mode `none`: requests go out without X-PARTNER-SIGN."""

    __slots__ = ()

    @property
    def mode(self) -> SigningMode:
        return SigningMode.NONE

    def sign(self, method: str, path: str, body: bytes) -> str | None:
        return None

    def __repr__(self) -> str:
        return "NoSigner()"


class RsaSigner:
    """Mode `rsa`: base64(RSASSA-PKCS1-v1_5(SHA-256, body)) with the partner's private key."""

    __slots__ = ("_empty_body_signature", "_key")

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise SigningConfigurationError(
                f"an RSA private key is needed, not {type(private_key).__name__}"
            )
        self._key = private_key
        self._empty_body_signature = self._sign_bytes(b"")

    @classmethod
    def from_pem(
        cls, pem: str | bytes, passphrase: str = "", *, source: str = ENV_RSA_KEY
    ) -> RsaSigner:
        """From PEM text; `source` names it in errors.

        Env-file habits are undone: literal `\\n` escapes become newlines, and
        quotes around the whole value are dropped.
        """
        data = (pem.encode() if isinstance(pem, str) else bytes(pem)).strip()
        if len(data) >= 2 and data[:1] == data[-1:] and data[:1] in (b'"', b"'"):
            data = data[1:-1]
        # Base64 and PEM armour never contain a backslash, so this only undoes escaping.
        data = data.replace(b"\\r", b"").replace(b"\\n", b"\n").strip()
        return cls(_load_private_key(data, passphrase, source))

    @classmethod
    def from_path(
        cls, path: str | os.PathLike[str], passphrase: str = "", *, source: str = ENV_RSA_KEY_PATH
    ) -> RsaSigner:
        """From a PEM file; `source` names the setting in errors (the path is not secret)."""
        shown = os.fspath(path)
        try:
            with open(path, "rb") as file:
                data = file.read(MAX_PEM_BYTES + 1)
        except FileNotFoundError:
            raise SigningConfigurationError(
                f"{source}: no such file {shown!r}; it must name a PEM private key file"
            ) from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise SigningConfigurationError(f"{source}: cannot read {shown!r} ({reason})") from None
        if len(data) > MAX_PEM_BYTES:
            raise SigningConfigurationError(
                f"{source}: {shown!r} is larger than {MAX_PEM_BYTES} bytes, not a PEM private key"
            )
        return cls(_load_private_key(data.strip(), passphrase, f"{source} ({shown!r})"))

    @property
    def mode(self) -> SigningMode:
        return SigningMode.RSA

    @property
    def key_size(self) -> int:
        return self._key.key_size

    def sign(self, method: str, path: str, body: bytes) -> str | None:
        """The signature of `body` (method and path are not signed: GUESS, see module doc)."""
        if not body:
            return self._empty_body_signature
        return self._sign_bytes(bytes(body))

    def public_key_pem(self) -> str:
        """The matching public key (SubjectPublicKeyInfo PEM): what Bank131 is given."""
        from cryptography.hazmat.primitives import serialization

        return (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )

    def _sign_bytes(self, data: bytes) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        signature = self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode("ascii")

    def __repr__(self) -> str:
        return f"RsaSigner(<{self._key.key_size}-bit RSA private key>)"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("RsaSigner holds a private key and is not picklable")


class HmacSigner:
    """Mode `hmac` (kyc-poller and its fakes, not Bank131): hex HMAC-SHA256 of method, path, body.

    The message is METHOD (upper-cased), "\\n", the request path as sent, "\\n",
    and the body bytes.
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: str) -> None:
        if not secret:
            raise SigningConfigurationError(
                f"{ENV_SIGNING_MODE}=hmac needs {ENV_HMAC_SECRET} (the shared secret)"
            )
        self._secret = secret.encode()

    @property
    def mode(self) -> SigningMode:
        return SigningMode.HMAC

    def sign(self, method: str, path: str, body: bytes) -> str | None:
        message = b"%s\n%s\n%s" % (method.upper().encode(), path.encode(), bytes(body))
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "HmacSigner(<secret>)"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("HmacSigner holds a secret and is not picklable")


def parse_mode(mode: SigningMode | str | None) -> SigningMode:
    """BANK131_SIGNING_MODE, case-insensitive; empty or None means the default, `none`."""
    text = (mode or "").strip().lower() or SigningMode.NONE.value
    try:
        return SigningMode(text)
    except ValueError:
        shown = text if len(text) <= 20 else text[:20] + "…"
        choices = ", ".join(m.value for m in SigningMode)
        raise SigningConfigurationError(
            f"{ENV_SIGNING_MODE} must be one of {choices}, not {shown!r}"
        ) from None


def build_signer(
    mode: SigningMode | str | None,
    *,
    rsa_key_pem: str = "",
    rsa_key_path: str = "",
    rsa_key_passphrase: str = "",
    hmac_secret: str = "",
) -> NoSigner | RsaSigner | HmacSigner:
    """The signer for BANK131_SIGNING_MODE and the settings of that mode.

    Raises SigningConfigurationError naming the variable to set or fix.
    """
    selected = parse_mode(mode)
    if selected is SigningMode.NONE:
        return NoSigner()
    if selected is SigningMode.HMAC:
        return HmacSigner(hmac_secret)
    if rsa_key_pem.strip() and rsa_key_path.strip():
        raise SigningConfigurationError(
            f"set only one of {ENV_RSA_KEY} (the PEM text) and {ENV_RSA_KEY_PATH} (a PEM file)"
        )
    if rsa_key_pem.strip():
        return RsaSigner.from_pem(rsa_key_pem, rsa_key_passphrase)
    if rsa_key_path.strip():
        return RsaSigner.from_path(rsa_key_path.strip(), rsa_key_passphrase)
    raise SigningConfigurationError(
        f"{ENV_SIGNING_MODE}=rsa needs the partner's RSA private key: set {ENV_RSA_KEY} "
        f"(the PEM text) or {ENV_RSA_KEY_PATH} (a PEM file)"
    )


def _load_private_key(data: bytes, passphrase: str, source: str) -> rsa.RSAPrivateKey:
    """The RSA private key in `data`; errors name `source` and never quote the data."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    labels = [label.decode() for label in _PEM_LABEL.findall(data)]
    if not labels:
        raise SigningConfigurationError(
            f"{source} is not a PEM private key (no '-----BEGIN ...-----' line)"
            + (f"; to name a file, set {ENV_RSA_KEY_PATH}" if source == ENV_RSA_KEY else "")
        )
    if not any(label.endswith("PRIVATE KEY") for label in labels):
        raise SigningConfigurationError(
            f"{source} holds a {labels[0]}, not a private key "
            "(Bank131 keeps the public key; kyc-poller needs the private one)"
        )
    if "OPENSSH PRIVATE KEY" in labels:
        raise SigningConfigurationError(
            f"{source} is an OpenSSH key; convert it to PEM (PKCS#8 or PKCS#1)"
        )
    password = passphrase.encode() if passphrase else None
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except TypeError:
        # cryptography: a passphrase for an unencrypted key, or none for an encrypted one.
        if password is None:
            raise SigningConfigurationError(
                f"{source} is encrypted: set {ENV_RSA_KEY_PASSPHRASE}"
            ) from None
        raise SigningConfigurationError(
            f"{source} is not encrypted, but {ENV_RSA_KEY_PASSPHRASE} is set: unset it"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        if password is not None:
            raise SigningConfigurationError(
                f"{source} could not be decrypted or read: "
                f"check {ENV_RSA_KEY_PASSPHRASE} and the key"
            ) from None
        raise SigningConfigurationError(
            f"{source} could not be read as a PEM private key (damaged or unsupported)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        kind = type(key).__name__.removeprefix("_").replace("PrivateKey", "") or "other"
        raise SigningConfigurationError(f"{source} holds a non-RSA key ({kind}); use an RSA key")
    return key
