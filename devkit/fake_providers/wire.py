"""The request and reply values passed between the HTTP server and the fake providers.

Keeping HTTP parsing in the server and rendering in plain functions makes each
provider's fake a small, testable module that never touches a socket.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    # The path as received (still percent-quoted), without the query string.
    path: str
    # Header names lower-cased.
    headers: Mapping[str, str]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    # Seconds to wait before answering (the "timeout" fault).
    delay: float = 0.0


def json_reply(status: int, document: Any, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(document).encode(), headers=dict(headers or {}))


def text_reply(status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> Reply:
    return Reply(status, text.encode(), content_type=content_type)


def now_iso() -> str:
    """The current time the way the providers' documents show it (UTC, 'Z')."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
