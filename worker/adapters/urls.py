"""Provider base URLs and request paths: checked once at start, built the same way every time.

Kept apart from the HTTP vocabulary (`worker.adapters.http`) so the adapter contract
can check a base URL without importing the answer-reading helpers.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote, urlsplit

from worker.domain.errors import ProviderConfigurationError

_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def check_base_url(provider: str, base_url: str, *, allow_insecure_http: bool = False) -> str:
    """The configured base URL without a trailing slash; refuse a missing or non-HTTP one.

    Plain http is refused unless the host is loopback (a local fake or tunnel) or
    `allow_insecure_http` says otherwise: it would send the provider's API key in clear.
    """
    base_url = (base_url or "").strip()
    if not base_url:
        raise ProviderConfigurationError(f"{provider} has no base URL configured")
    parts = urlsplit(base_url)
    try:
        host, _port = parts.hostname, parts.port  # .port raises on a port out of range
    except ValueError:
        host = None
    if (
        parts.scheme not in {"http", "https"}
        or not host
        or not base_url.isascii()  # sent as written: an IDN host goes in its xn-- form
        or any(c.isspace() for c in base_url)
        or _BAD_PERCENT.search(base_url) is not None  # sent as written: escapes must be valid
    ):
        # The value itself is not quoted: it may carry credentials.
        scheme = parts.scheme[:10] or "none"
        raise ProviderConfigurationError(
            f"{provider} base URL must be an ASCII http(s) URL with a host, no spaces "
            f"(scheme {scheme!r})"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ProviderConfigurationError(
            f"{provider} base URL must not carry a query, fragment or credentials"
        )
    if parts.scheme == "http" and not (allow_insecure_http or is_loopback(host)):
        prefix = provider.upper()
        raise ProviderConfigurationError(
            f"{provider} base URL must be https (plain http would send its credentials in "
            f"clear); http is accepted on loopback only, or with {prefix}_ALLOW_INSECURE_HTTP=true"
        )
    return base_url.rstrip("/")


def is_loopback(host: str | None) -> bool:
    """localhost, 127.0.0.0/8 or ::1."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def provider_url(base_url: str, *segments: str) -> str:
    """base_url + quoted path segments: each segment stays one segment, whatever it holds."""
    return "/".join([base_url, *(quote(segment, safe="") for segment in segments)])
