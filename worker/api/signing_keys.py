"""Event signing keys from the environment and from files (workers sign, readers verify),
read the same way by the fleet (its settings) and by apps' readers (`worker.api`).

Workers (the relay signs what it publishes):

    KYC_EVENT_SIGNING_KEY       the Ed25519 private key: PKCS#8 PEM, or its 32-byte seed in
                                base64 (what `generate_key_pair` prints)
    KYC_EVENT_SIGNING_KEY_FILE  or a file holding it (a mounted secret); set only one
    KYC_EVENT_SIGNING_KEY_ID    its key id, put in every event (required with a key)

Readers (GroupConsumer, replay, iter_events, kyc-events, `kyc-poller events`):

    KYC_EVENT_VERIFY_KEYS       the accepted public keys, `id=key` separated by commas:
                                `2026-11=<base64>,2027-05=<base64>` (rotation: both at once)
    KYC_EVENT_VERIFY_KEYS_FILE  or a file of such entries, one per line (`#` comments; PEM
                                public keys allowed there); set only one

A reader of the fleet's own configuration (an operator's shell: the CLI) also accepts
the public half of KYC_EVENT_SIGNING_KEY (`reader_verifier`). Rotation: add the new public
key to every reader's ring, switch the workers to the new private key, drop the old public
key once the stream no longer holds its events.

The files are read once, at start-up, at most `MAX_KEY_FILE_BYTES`. Errors name
the variable and the path, never the key. `cryptography` loads only when a key
is actually parsed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from worker.domain.errors import ConfigurationError
from worker.domain.signatures import (
    EventSigner,
    EventVerifier,
    KeyMaterialError,
    parse_private_key,
    parse_public_key_ring,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ENV_SIGNING_KEY: Final = "KYC_EVENT_SIGNING_KEY"
ENV_SIGNING_KEY_FILE: Final = "KYC_EVENT_SIGNING_KEY_FILE"
ENV_SIGNING_KEY_ID: Final = "KYC_EVENT_SIGNING_KEY_ID"
ENV_VERIFY_KEYS: Final = "KYC_EVENT_VERIFY_KEYS"
ENV_VERIFY_KEYS_FILE: Final = "KYC_EVENT_VERIFY_KEYS_FILE"

# A key file larger than this is not one (a PEM Ed25519 key is 119 bytes; 100 ring entries
# of base64 keys are ~6 KB).
MAX_KEY_FILE_BYTES: Final = 64 * 1024


def read_key_file(path: str, *, source: str) -> bytes:
    """The bytes of a key file, bounded; KeyMaterialError naming `source` and the path."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise KeyMaterialError(f"{source}: no such file {path!r}") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise KeyMaterialError(f"{source}: cannot read {path!r} ({reason})") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyMaterialError(
            f"{source}: {path!r} is larger than {MAX_KEY_FILE_BYTES} bytes, not a key file"
        )
    return data


def _one_of(env: Mapping[str, str], text_name: str, file_name: str) -> tuple[bytes, str] | None:
    """The key text from the variable or the file it names, with where it came from."""
    text = env.get(text_name, "").strip()
    path = env.get(file_name, "").strip()
    if text and path:
        raise KeyMaterialError(f"set only one of {text_name} and {file_name}")
    if text:
        return text.encode(), text_name
    if path:
        source = f"{file_name} ({path!r})"
        return read_key_file(path, source=file_name), source
    return None


def signer_from_env(env: Mapping[str, str] | None = None) -> EventSigner | None:
    """The workers' signer, or None when no signing key is configured at all."""
    env = os.environ if env is None else env
    found = _one_of(env, ENV_SIGNING_KEY, ENV_SIGNING_KEY_FILE)
    key_id = env.get(ENV_SIGNING_KEY_ID, "").strip()
    if found is None:
        if key_id:
            raise KeyMaterialError(
                f"{ENV_SIGNING_KEY_ID} is set but no key: set {ENV_SIGNING_KEY} "
                f"or {ENV_SIGNING_KEY_FILE}"
            )
        return None
    data, source = found
    if not key_id:
        raise KeyMaterialError(
            f"{source} is set: {ENV_SIGNING_KEY_ID} must name it (readers look keys up by id)"
        )
    return EventSigner(parse_private_key(data, source=source), key_id)


def verifier_from_env(env: Mapping[str, str] | None = None) -> EventVerifier:
    """The readers' verifier; KeyMaterialError when no public key is configured.

    There is no silent default: a reader without keys cannot tell a forged
    event from a real one, so it must be given keys or told explicitly (by its
    own option) not to verify.
    """
    env = os.environ if env is None else env
    found = _one_of(env, ENV_VERIFY_KEYS, ENV_VERIFY_KEYS_FILE)
    if found is None:
        raise KeyMaterialError(
            f"no public keys to verify events with: set {ENV_VERIFY_KEYS} "
            f"(id=base64 key, comma-separated) or {ENV_VERIFY_KEYS_FILE}"
        )
    data, source = found
    return EventVerifier(parse_public_key_ring(data, source=source))


def reader_verifier(env: Mapping[str, str] | None = None) -> EventVerifier | None:
    """The configured public keys plus the signing key's public half; None when neither."""
    env = os.environ if env is None else env
    keys: dict[str, Ed25519PublicKey] = {}
    found = _one_of(env, ENV_VERIFY_KEYS, ENV_VERIFY_KEYS_FILE)
    if found is not None:
        data, source = found
        keys.update(parse_public_key_ring(data, source=source))
    signer = signer_from_env(env)
    if signer is not None:
        keys.setdefault(signer.key_id, signer.public_key)
    return EventVerifier(keys) if keys else None


def require_verifier(env: Mapping[str, str] | None = None) -> EventVerifier:
    """A reader's verifier; ConfigurationError saying how to get one when none is set."""
    verifier = reader_verifier(env)
    if verifier is None:
        raise ConfigurationError(
            f"events are verified before they are handed over: set {ENV_VERIFY_KEYS} "
            f"(or {ENV_VERIFY_KEYS_FILE}) to the fleet's public key(s), pass a verifier, or "
            "turn verification off explicitly (verify=False, --no-verify)"
        )
    return verifier
