"""The credentials the fakes accept: the same defaults docker-compose.yml gives the workers.

Bank131 signing (`bank131_signing_mode`, the adapter's BANK131_SIGNING_MODE):

- `none` (the default, as the adapter's): no signature is checked;
- `rsa`: X-PARTNER-SIGN must be the RSA signature of the body made with the
  partner's private key; the fake verifies it with `bank131_rsa_public_key`, or,
  when only `bank131_rsa_private_key` is given, with that key's public half.
  `FakeCredentials.with_bank131_rsa_key()` makes a fresh key pair (no key is ever
  stored in the repository);
- `hmac`: kyc-poller's shared-secret test scheme with `bank131_signing_secret`.

`bank131_signing_env()` is the part of the worker's environment that makes the
adapter sign the way the fake checks (the fakes' `provider_env()` includes it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DEFAULT_NOTUS_API_KEY = "notus-test-key"
DEFAULT_BANK131_PROJECT = "kyc-poller"
DEFAULT_BANK131_SIGNING_SECRET = "bank131-test-secret"
DEFAULT_GU1_API_KEY = "gu1-test-key"
DEFAULT_PREDICATE_API_KEY = "predicate-test-key"
DEFAULT_BANK131_SIGNING_MODE = "none"
BANK131_SIGNING_MODES = ("none", "rsa", "hmac")
GENERATED_KEY_SIZE = 2048


@dataclass(frozen=True)
class FakeCredentials:
    """What each fake provider checks on every status request."""

    notus_api_key: str = DEFAULT_NOTUS_API_KEY
    bank131_project: str = DEFAULT_BANK131_PROJECT
    bank131_signing_secret: str = DEFAULT_BANK131_SIGNING_SECRET
    gu1_api_key: str = DEFAULT_GU1_API_KEY
    predicate_api_key: str = DEFAULT_PREDICATE_API_KEY
    bank131_signing_mode: str = DEFAULT_BANK131_SIGNING_MODE
    # PEM text. The private key is what provider_env() hands the adapter; the fake
    # itself only needs the public key (derived from the private one if not given).
    bank131_rsa_private_key: str = field(default="", repr=False)
    bank131_rsa_public_key: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        mode = self.bank131_signing_mode.strip().lower()
        if mode not in BANK131_SIGNING_MODES:
            raise ValueError(
                f"bank131_signing_mode must be one of {', '.join(BANK131_SIGNING_MODES)}, "
                f"not {self.bank131_signing_mode!r}"
            )
        object.__setattr__(self, "bank131_signing_mode", mode)
        if mode == "hmac" and not self.bank131_signing_secret:
            raise ValueError("bank131_signing_mode 'hmac' needs bank131_signing_secret")
        if mode == "rsa":
            if not (self.bank131_rsa_public_key or self.bank131_rsa_private_key):
                raise ValueError(
                    "bank131_signing_mode 'rsa' needs bank131_rsa_public_key or "
                    "bank131_rsa_private_key (see FakeCredentials.with_bank131_rsa_key)"
                )
            self.bank131_public_key()  # fail now, not on the first request

    @classmethod
    def with_bank131_rsa_key(
        cls, key_size: int = GENERATED_KEY_SIZE, **overrides: Any
    ) -> FakeCredentials:
        """Credentials in `rsa` mode with a freshly generated, unencrypted key pair."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        return cls(bank131_signing_mode="rsa", bank131_rsa_private_key=pem, **overrides)

    def bank131_public_key(self) -> rsa.RSAPublicKey:
        """The key the fake verifies `rsa` signatures with (ValueError if there is none)."""
        if self.bank131_rsa_public_key:
            try:
                key: Any = serialization.load_pem_public_key(
                    _pem_bytes(self.bank131_rsa_public_key)
                )
            except (ValueError, UnsupportedAlgorithm):
                raise ValueError("bank131_rsa_public_key is not a PEM public key") from None
        elif self.bank131_rsa_private_key:
            try:
                private: Any = serialization.load_pem_private_key(
                    _pem_bytes(self.bank131_rsa_private_key), password=None
                )
            except (TypeError, ValueError, UnsupportedAlgorithm):
                raise ValueError(
                    "bank131_rsa_private_key is not an unencrypted PEM private key"
                ) from None
            key = private.public_key()
        else:
            raise ValueError("no Bank131 RSA key is configured for the fake")
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("the fake's Bank131 key is not an RSA key")
        return key

    def bank131_signing_env(self) -> dict[str, str]:
        """The adapter's signing variables that match what the fake checks.

        `rsa` needs `bank131_rsa_private_key`; the PEM goes out on one line with
        `\\n` escapes (the adapter reads both forms), so it can be printed and put
        in env files.
        """
        env = {"BANK131_SIGNING_MODE": self.bank131_signing_mode}
        if self.bank131_signing_mode == "hmac":
            env["BANK131_SIGNING_SECRET"] = self.bank131_signing_secret
        elif self.bank131_signing_mode == "rsa":
            if not self.bank131_rsa_private_key:
                raise ValueError(
                    "the fake knows only the public key; give the worker the private key itself"
                )
            env["BANK131_RSA_PRIVATE_KEY"] = self.bank131_rsa_private_key.strip().replace(
                "\n", "\\n"
            )
        return env

    def secret_values(self) -> tuple[str, ...]:
        """Every secret these credentials hold (for tests that check nothing leaks)."""
        values = (
            self.notus_api_key,
            self.bank131_project,
            self.bank131_signing_secret,
            self.gu1_api_key,
            self.predicate_api_key,
            self.bank131_rsa_private_key,
        )
        return tuple(value for value in values if value)


def _pem_bytes(text: str) -> bytes:
    return text.strip().replace("\\n", "\n").encode()
