"""The test session's event key pair: workers sign with it, readers accept it."""

from __future__ import annotations

import functools
import os

from worker.api import signing_keys
from worker.domain.signatures import EventSigner, GeneratedKeyPair, generate_key_pair

KEY_ID = "test-session"


@functools.cache
def session_key_pair() -> GeneratedKeyPair:
    return generate_key_pair(KEY_ID)


def install_test_event_keys() -> None:
    """Put the pair into this process's environment (inherited by every child process)."""
    pair = session_key_pair()
    os.environ[signing_keys.ENV_SIGNING_KEY] = pair.private_key
    os.environ[signing_keys.ENV_SIGNING_KEY_ID] = pair.key_id
    os.environ[signing_keys.ENV_VERIFY_KEYS] = pair.ring_entry
    os.environ.pop(signing_keys.ENV_SIGNING_KEY_FILE, None)
    os.environ.pop(signing_keys.ENV_VERIFY_KEYS_FILE, None)


def session_signer() -> EventSigner:
    pair = session_key_pair()
    return EventSigner.from_text(pair.private_key, pair.key_id)
