"""Bearer tokens for the HTTP API, pure: configured hashed, compared in constant time, scoped.

Configuration holds only SHA-256 digests (`KYC_API_TOKENS="name:scope+scope:<sha256 hex>,…"`),
so a leaked environment or file gives no usable token. A presented token is hashed and
compared with every configured digest (`hmac.compare_digest`, no early exit), so timing
says nothing about which digest, or how much of one, matched.

Scopes: `track` (start tracking, poll now) and `read` (status and history).
Revocation: remove the entry (at the next start), or revoke the name fleet-wide at once
(`kyc-poller api-token revoke NAME`; the service checks that list on every request).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

TOKEN_PREFIX = "kyc_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
MAX_TOKEN_CHARS = 512


class Scope(StrEnum):
    TRACK = "track"
    READ = "read"


@dataclass(frozen=True)
class ApiToken:
    """One configured token: its name (shown in metrics and logs), scopes and digest."""

    name: str
    scopes: frozenset[Scope]
    digest: str  # SHA-256 hex of the token

    def __repr__(self) -> str:  # the digest is not secret, but has no business in logs
        return f"ApiToken({self.name!r}, {sorted(self.scopes)})"


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits), with a prefix that secret scanners can spot."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def parse_tokens(text: str) -> tuple[ApiToken, ...]:
    """`name:scope+scope:sha256hex` entries separated by commas or new lines.

    ValueError names the entry by position and name only, never its digest. Blank
    entries and `#` comment lines are skipped (a file can hold one entry per line).
    """
    tokens: list[ApiToken] = []
    names: set[str] = set()
    digests: set[str] = set()
    entries = [e.strip() for line in text.splitlines() for e in line.split(",")]
    position = 0
    for entry in entries:
        if not entry or entry.startswith("#"):
            continue
        position += 1
        parts = entry.split(":")
        if len(parts) != 3:
            raise ValueError(f"API token entry {position}: expected name:scopes:sha256hex")
        name, scope_text, digest = (part.strip() for part in parts)
        if not _NAME.fullmatch(name):
            raise ValueError(f"API token entry {position}: a name is 1-64 of [A-Za-z0-9_.-]")
        scopes = _scopes(scope_text, f"API token {name!r}")
        digest = digest.lower()
        if not _DIGEST.fullmatch(digest):
            raise ValueError(f"API token {name!r}: the hash must be 64 hex digits (SHA-256)")
        if name in names:
            raise ValueError(f"API token {name!r} is configured twice")
        if digest in digests:
            raise ValueError(f"API token {name!r} has the same hash as another token")
        names.add(name)
        digests.add(digest)
        tokens.append(ApiToken(name, scopes, digest))
    return tuple(tokens)


def _scopes(text: str, what: str) -> frozenset[Scope]:
    words = [word.strip() for word in text.split("+") if word.strip()]
    known = {scope.value for scope in Scope}
    unknown = sorted(set(words) - known)
    if not words or unknown:
        raise ValueError(f"{what}: scopes are {'+'.join(sorted(known))} (got {text[:40]!r})")
    return frozenset(Scope(word) for word in words)


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
        return None
    return token


def authenticate(token: str | None, tokens: Iterable[ApiToken]) -> ApiToken | None:
    """The configured token `token` is, or None; every digest is compared (constant time)."""
    if token is None:
        return None
    presented = digest_of(token).encode()
    found: ApiToken | None = None
    for candidate in tokens:
        if hmac.compare_digest(presented, candidate.digest.encode()):
            found = candidate
    return found
