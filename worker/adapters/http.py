"""HTTP vocabulary shared by the adapters: URLs, status classification, bounded JSON.

Pure functions over `ProviderRequest`/`ProviderResponse`; the transport does the
I/O. The pieces are separate — `raise_for_http_status`, `parse_json_object`,
`json_object_or_none` — so an adapter whose provider puts error details in the
body of a 4xx (Bank131) can read them before the generic classification.

Error messages name the provider and the HTTP status only: never the URL's
credentials, headers, signatures or the response body (bodies hold personal data).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from worker.adapters.contract import ProviderResponse
from worker.adapters.urls import check_base_url, provider_url
from worker.domain.errors import (
    ErrorCode,
    PermanentProviderError,
    ProviderUnavailableError,
    RateLimitedError,
    TransientProviderError,
)

__all__ = ["check_base_url", "provider_url"]  # their home is worker.adapters.urls

# A provider asking us to come back after more than a day is treated as asking for a day.
MAX_RETRY_AFTER_SECONDS = 24 * 3600.0


def short_text(value: object, limit: int = 100) -> str | None:
    """A non-empty string cut to `limit` characters, or None (for summaries)."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value[:limit] if value else None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None.

    Negative values and dates in the past give 0; absurdly long waits are capped.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        current = datetime.now(UTC).timestamp() if now is None else now
        seconds = when.timestamp() - current
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def raise_for_http_status(provider: str, response: ProviderResponse) -> None:
    """Raise the ProviderError a non-2xx status means; return quietly on 2xx."""
    code = response.status
    if 200 <= code < 300:
        return
    message = f"HTTP {code} from {provider}"
    if code == 429 or code == 425:  # 425 Too Early: the same "come back later"
        retry_after = parse_retry_after(response.header("Retry-After"))
        if retry_after is not None:
            message += f" (retry after {retry_after:g}s)"
        raise RateLimitedError(
            ErrorCode.RATE_LIMITED, message, http_status=code, retry_after=retry_after
        )
    if code >= 500:
        raise ProviderUnavailableError(ErrorCode.SERVER_ERROR, message, http_status=code)
    if code == 408:
        # Request Timeout: usually the provider's front end gave up on its own backend.
        raise ProviderUnavailableError(ErrorCode.TIMEOUT, message, http_status=code)
    if code in (401, 403):
        raise ProviderUnavailableError(ErrorCode.AUTH_FAILED, message, http_status=code)
    if code == 404:
        raise PermanentProviderError(ErrorCode.NOT_FOUND, message, http_status=code)
    if 300 <= code < 400:
        # Redirects are not followed: custom auth headers would go wherever they point.
        raise PermanentProviderError(
            ErrorCode.HTTP_ERROR, f"{message} (redirect)", http_status=code
        )
    raise PermanentProviderError(ErrorCode.HTTP_ERROR, message, http_status=code)


class _TooDeep(Exception):
    pass


def json_depth_exceeds(value: object, limit: int) -> bool:
    """True when `value` nests lists/objects deeper than `limit` (iterative: no recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def json_object_or_none(response: ProviderResponse) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one.

    Raises response_too_deep for nesting beyond the response's limit (a parser
    recursion error included), so a hostile body is named for what it is.
    """
    try:
        body = json.loads(response.body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise too_deep(response) from None
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    if json_depth_exceeds(body, response.max_json_depth):
        raise too_deep(response)
    return body


def _refuse_constant(name: str) -> Any:
    """NaN and ±Infinity are not JSON (RFC 8259); Python accepts them, jsonb does not."""
    raise ValueError(f"not a JSON number: {name}")


def _finite_float(text: str) -> float:
    """A number such as 1e999 overflows to infinity: refused like NaN."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def too_deep(response: ProviderResponse) -> PermanentProviderError:
    return PermanentProviderError(
        ErrorCode.RESPONSE_TOO_DEEP,
        f"answer nests JSON deeper than {response.max_json_depth} levels",
        http_status=response.status,
    )


def parse_json_object(provider: str, response: ProviderResponse) -> dict[str, Any]:
    """The body as a JSON object; PermanentProviderError(malformed_response) otherwise."""
    body = json_object_or_none(response)
    if body is None:
        raise PermanentProviderError(
            ErrorCode.MALFORMED_RESPONSE,
            f"{provider} answered HTTP {response.status} with a body that is not a JSON object",
            http_status=response.status,
        )
    return body


def checked_json(provider: str, response: ProviderResponse) -> dict[str, Any]:
    """Classify the HTTP status, then return the body as a JSON object."""
    raise_for_http_status(provider, response)
    return parse_json_object(provider, response)


def malformed_response(provider: str, what: str) -> PermanentProviderError:
    """The error for an answer that is JSON but not shaped like the provider's documents."""
    return PermanentProviderError(
        ErrorCode.MALFORMED_RESPONSE, f"malformed {provider} answer: {what}"
    )


def status_word(provider: str, answer: dict[str, Any]) -> str:
    """The answer's "status" string, stripped; malformed_response when absent or not text."""
    word = answer.get("status")
    if not isinstance(word, str) or not word.strip():
        raise malformed_response(provider, "no status string")
    return word.strip()


def unknown_status(provider: str, word: str) -> TransientProviderError:
    """The error for a status word missing from an adapter's table (maybe a new provider word).

    Transient: the word is recorded and polling continues until someone maps it.
    """
    return TransientProviderError(
        ErrorCode.UNKNOWN_STATUS,
        f"{provider} answered with status {word[:64]!r}, which kyc-poller does not know",
        provider_status=word[:128],
    )
