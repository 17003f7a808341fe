"""Webhook rules, pure: signatures over the raw body, bounded JSON, JSON pointers, replay windows.

A provider's webhook is a *hint*: it names a verification that may have changed, and
kyc-poller polls it through the one guarded poll-now path. Nothing in a webhook body is
ever written. These rules decide only whether a request is genuine and which ids it names.

Invariants:
- the signature is computed over the raw bytes received, never a re-serialized body;
- signatures are compared in constant time (`hmac.compare_digest`);
- a body is parsed only after its signature was checked, and only if its nesting is within
  the limit (checked on the raw bytes first: a 100k-deep array never reaches the parser);
- errors name the reason only: never the secret, the signature or a byte of the body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

ALGORITHMS: dict[str, Any] = {
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
    "sha1": hashlib.sha1,
}
ENCODINGS = ("hex", "base64")


class Refusal(StrEnum):
    """Why a webhook was refused (metric label values; a bounded vocabulary)."""

    NOT_CONFIGURED = "not_configured"  # no webhook for this provider here: 404
    TOO_LARGE = "too_large"  # 413
    TOO_SLOW = "too_slow"  # the body did not arrive within the deadline: 408
    MISSING_SIGNATURE = "missing_signature"  # 401
    BAD_SIGNATURE = "bad_signature"  # 401
    STALE = "stale"  # signed, but its timestamp is outside the replay window: 401
    REPLAYED = "replayed"  # the very same signed body seen within the window: 200, no poll
    TOO_DEEP = "too_deep"  # 400
    MALFORMED = "malformed"  # not JSON, no id where the format says: 400
    RATE_LIMITED = "rate_limited"  # the provider's fleet-wide webhook rate: 429
    IGNORED_EVENT = "ignored_event"  # signed, but an event kind that names no KYC change: 200


class WebhookRefused(Exception):
    """A request that is not a usable webhook; `reason` says why (never the body)."""

    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class WebhookHint:
    """What a genuine webhook says: these ids of this provider may have changed."""

    external_ids: tuple[str, ...]
    event: str | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True)
class HmacScheme:
    """How a provider signs: an HMAC of the raw body, in a header.

    `prefix`: text before the digest in the header (e.g. "sha256="), removed before comparing.
    """

    header: str
    algorithm: str = "sha256"
    encoding: str = "hex"
    prefix: str = ""

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}")
        if not self.header.strip():
            raise ValueError("the signature header name must not be empty")

    def digest(self, secret: bytes, body: bytes) -> bytes:
        return hmac.new(secret, body, ALGORITHMS[self.algorithm]).digest()

    def sign(self, secret: bytes, body: bytes) -> str:
        """The header value a provider would send (the devkit and tests sign with it)."""
        raw = self.digest(secret, body)
        text = raw.hex() if self.encoding == "hex" else base64.b64encode(raw).decode()
        return self.prefix + text

    def verify(self, secret: bytes, body: bytes, headers: Mapping[str, str]) -> None:
        """Return quietly when the header carries this body's HMAC; else WebhookRefused."""
        value = headers.get(self.header.lower())
        if value is None or not value.strip():
            raise WebhookRefused(Refusal.MISSING_SIGNATURE, f"no {self.header} header")
        given = _decode(value.strip().removeprefix(self.prefix), self.encoding)
        expected = self.digest(secret, body)
        # compare_digest on equal-length inputs runs in time independent of the contents.
        if given is None or not hmac.compare_digest(given, expected):
            raise WebhookRefused(Refusal.BAD_SIGNATURE, f"{self.header} does not match the body")


def _decode(text: str, encoding: str) -> bytes | None:
    try:
        if encoding == "hex":
            return bytes.fromhex(text)
        return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        return None


# --------------------------------------------------------------------------- bounded JSON


def raw_depth_exceeds(body: bytes, limit: int) -> bool:
    """Does the JSON text nest arrays/objects deeper than `limit`? Read on bytes, no parse.

    Brackets inside strings are skipped (escapes honoured). Linear, no recursion, so a
    10 MB run of `[` costs one pass and never a stack.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # too few brackets to nest that deep: no scan (the common case)
    depth = 0
    in_string = False
    escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def parse_object(body: bytes, max_depth: int) -> dict[str, Any]:
    """The body as a JSON object, nested at most `max_depth`; WebhookRefused otherwise."""
    if raw_depth_exceeds(body, max_depth):
        raise WebhookRefused(Refusal.TOO_DEEP, f"JSON nested deeper than {max_depth} levels")
    try:
        document = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise WebhookRefused(Refusal.MALFORMED, "the body is not JSON") from None
    if not isinstance(document, dict):
        raise WebhookRefused(Refusal.MALFORMED, "the body is not a JSON object")
    return document


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


# --------------------------------------------------------------------------- JSON pointers


@dataclass(frozen=True)
class JsonPointer:
    """An RFC 6901 JSON pointer ("/payload/validationId"; "" is the whole document)."""

    text: str
    tokens: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.text and not self.text.startswith("/"):
            raise ValueError("a JSON pointer is empty or starts with '/'")
        tokens = self.text.split("/")[1:] if self.text else []
        for token in tokens:
            if "~" in token.replace("~0", "").replace("~1", ""):
                raise ValueError("a JSON pointer escapes '~' as ~0 and '/' as ~1 only")
        unescaped = tuple(t.replace("~1", "/").replace("~0", "~") for t in tokens)
        object.__setattr__(self, "tokens", unescaped)

    def resolve(self, document: object) -> object:
        """The value it points at, or None when there is none."""
        current = document
        for token in self.tokens:
            if isinstance(current, dict):
                if token not in current:
                    return None
                current = current[token]
            elif isinstance(current, list):
                if not (token.isdigit() and (token == "0" or not token.startswith("0"))):
                    return None
                index = int(token)
                if index >= len(current):
                    return None
                current = current[index]
            else:
                return None
        return current


# --------------------------------------------------------------------------- time


def parse_timestamp(value: object) -> datetime | None:
    """A webhook's send time: ISO 8601 (a zone required) or Unix seconds / milliseconds.

    GUESS for numbers: above 10^11 they are milliseconds (10^11 s is the year 5138).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
        if not math.isfinite(seconds) or seconds < 0:
            return None
        if seconds > 1e11:
            seconds /= 1000.0
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and 0 < len(value) <= 64:
        text = value.strip()
        if text.replace(".", "", 1).isdigit():
            return parse_timestamp(float(text))
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return None if moment.tzinfo is None else moment.astimezone(UTC)
    return None


def check_window(sent_at: datetime | None, now: datetime, window_seconds: float) -> None:
    """Refuse a signed body sent more than `window_seconds` away from now (either way).

    A provider that sends no timestamp has no window (sent_at None): its exact replays
    are still caught by the duplicate check on the signature.
    """
    if sent_at is None or window_seconds <= 0:
        return
    if abs((now - sent_at).total_seconds()) > window_seconds:
        raise WebhookRefused(Refusal.STALE, f"timestamp outside the {window_seconds:g}s window")


# --------------------------------------------------------------------------- formats


class WebhookFormat(ABC):
    """One provider's webhook: how it is signed and where the ids are in a genuine body."""

    scheme: HmacScheme

    @abstractmethod
    def hint(self, document: dict[str, Any]) -> WebhookHint:
        """The ids a signed body names (WebhookRefused: malformed / ignored_event)."""


@dataclass(frozen=True)
class PointerFormat(WebhookFormat):
    """The generic, configurable format: an HMAC header, the id (and a time) at JSON pointers.

    For providers whose webhook format kyc-poller does not know; off unless configured.
    """

    scheme: HmacScheme
    id_pointer: JsonPointer
    timestamp_pointer: JsonPointer | None = None

    def hint(self, document: dict[str, Any]) -> WebhookHint:
        found = self.id_pointer.resolve(document)
        ids = found if isinstance(found, list) else [found]
        if not ids or len(ids) > MAX_IDS_PER_WEBHOOK:
            raise WebhookRefused(Refusal.MALFORMED, "no id, or too many, at the id pointer")
        texts = tuple(_id_text(value) for value in ids)
        sent_at = None
        if self.timestamp_pointer is not None:
            sent_at = parse_timestamp(self.timestamp_pointer.resolve(document))
            if sent_at is None:
                raise WebhookRefused(Refusal.MALFORMED, "no valid timestamp at its pointer")
        return WebhookHint(texts, None, sent_at)


MAX_IDS_PER_WEBHOOK = 100


def _id_text(value: object) -> str:
    """An id as text (numbers allowed: some providers number their checks)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise WebhookRefused(Refusal.MALFORMED, "the id is not a string")
    text = str(value)
    if not 0 < len(text) <= 128:
        raise WebhookRefused(Refusal.MALFORMED, "the id is empty or longer than 128 characters")
    return text


def read_webhook(
    webhook: WebhookFormat,
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime,
    max_depth: int,
    window_seconds: float,
) -> WebhookHint:
    """Verify, then parse, then read the ids, then check the replay window. Order matters:
    nothing of an unsigned body is parsed; `headers` keys are lower-case."""
    webhook.scheme.verify(secret, body, headers)
    hint = webhook.hint(parse_object(body, max_depth))
    check_window(hint.sent_at, now, window_seconds)
    return hint
