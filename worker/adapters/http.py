"""The one HTTP client every adapter uses, and the translation of HTTP failures into errors.

Retrying is the polling core's job (it knows the backoff and the deadlines), so
the session never retries on its own, and every request carries a timeout. The
pieces are separate — `send`, `raise_for_http_status`, `parse_json_object`,
`json_object_or_none` — so an adapter whose provider puts error details in the
body of a 4xx (Bank131) can read them before the generic classification.

Error messages name the provider and the HTTP status only: never the URL's
credentials, headers, signatures or the response body (bodies hold personal data).
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from worker.adapters.base import (
    PermanentProviderError,
    ProviderConfigurationError,
    TransientProviderError,
)

USER_AGENT = "kyc-poller/0.1"
# Each worker process polls a handful of hosts; keep a few warm connections per host.
POOL_CONNECTIONS = 8
POOL_MAXSIZE = 16
# A provider asking us to come back after more than a day is treated as asking for a day.
MAX_RETRY_AFTER_SECONDS = 24 * 3600.0


def create_http_session() -> requests.Session:
    """A pooled session with our User-Agent and urllib3's automatic retries switched off."""
    session = requests.Session()
    adapter = HTTPAdapter(
        pool_connections=POOL_CONNECTIONS,
        pool_maxsize=POOL_MAXSIZE,
        # read=False, not 0: with 0 urllib3 wraps a read timeout in MaxRetryError and
        # requests reports it as a ConnectionError instead of a Timeout.
        max_retries=Retry(total=0, connect=0, read=False, redirect=0, status=0, other=0),
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    return session


def check_base_url(provider: str, base_url: str) -> str:
    """The configured base URL without a trailing slash; refuse a missing or non-HTTP one."""
    base_url = (base_url or "").strip()
    if not base_url:
        raise ProviderConfigurationError(f"{provider} has no base URL configured")
    parts = urlsplit(base_url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ProviderConfigurationError(
            f"{provider} base URL must be an http(s) URL with a host, got {base_url!r}"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ProviderConfigurationError(
            f"{provider} base URL must not carry a query, fragment or credentials"
        )
    return base_url.rstrip("/")


def provider_url(base_url: str, *segments: str) -> str:
    """base_url + quoted path segments: each segment stays one segment, whatever it holds."""
    return "/".join([base_url, *(quote(segment, safe="") for segment in segments)])


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


def raise_for_http_status(provider: str, response: requests.Response) -> None:
    """Raise the ProviderError a non-2xx status means; return quietly on 2xx."""
    code = response.status_code
    if 200 <= code < 300:
        return
    message = f"HTTP {code} from {provider}"
    if code == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is not None:
            message += f" (retry after {retry_after:g}s)"
        raise TransientProviderError(
            "rate_limited", message, http_status=code, retry_after=retry_after
        )
    if code >= 500:
        raise TransientProviderError("server_error", message, http_status=code)
    if code in (401, 403):
        raise PermanentProviderError("auth_failed", message, http_status=code)
    if code == 404:
        raise PermanentProviderError("not_found", message, http_status=code)
    if 300 <= code < 400:
        # Redirects are not followed: custom auth headers would go wherever they point.
        raise PermanentProviderError("http_error", f"{message} (redirect)", http_status=code)
    raise PermanentProviderError("http_error", message, http_status=code)


def json_object_or_none(response: requests.Response) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def parse_json_object(provider: str, response: requests.Response) -> dict[str, Any]:
    """The body as a JSON object; PermanentProviderError("malformed_response") otherwise."""
    body = json_object_or_none(response)
    if body is None:
        raise PermanentProviderError(
            "malformed_response",
            f"{provider} answered HTTP {response.status_code} with a body that is not JSON",
            http_status=response.status_code,
        )
    return body


def malformed_response(provider: str, what: str) -> PermanentProviderError:
    """The error for an answer that is JSON but not shaped like the provider's documents."""
    return PermanentProviderError("malformed_response", f"malformed {provider} answer: {what}")


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
        "unknown_status",
        f"{provider} answered with status {word[:64]!r}, which kyc-poller does not know",
        provider_status=word,
    )


class ProviderHttp:
    """Sends provider requests with timeouts and turns transport failures into errors."""

    def __init__(
        self, session: requests.Session, *, connect_timeout: float, read_timeout: float
    ) -> None:
        self.session = session
        self.timeout = (connect_timeout, read_timeout)

    def send(
        self,
        provider: str,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> requests.Response:
        """Send once and return the response whatever its HTTP status.

        Raises TransientProviderError for timeouts and connection failures.
        """
        started = time.monotonic()
        try:
            return self.session.request(
                method,
                url,
                headers=headers,
                data=body,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            elapsed = time.monotonic() - started
            raise TransientProviderError(
                "timeout", f"no answer from {provider} within {elapsed:.1f}s"
            ) from None
        except (
            requests.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            raise TransientProviderError(
                "connection_error", f"could not talk to {provider} ({type(exc).__name__})"
            ) from None
        except requests.RequestException as exc:
            # Invalid URL and the like: a configuration problem, retrying will not fix it.
            raise PermanentProviderError(
                "request_failed", f"could not send a request to {provider} ({type(exc).__name__})"
            ) from None

    def request_json(
        self,
        provider: str,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> dict[str, Any]:
        """Send, classify the HTTP status, and return the body as a JSON object."""
        response = self.send(provider, method, url, headers=headers, body=body)
        raise_for_http_status(provider, response)
        return parse_json_object(provider, response)
