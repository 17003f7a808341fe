"""The one redactor: what may be shown of URLs and texts that can carry credentials.

Every place that prints a URL or an error about a service (the CLI, `doctor`, the
health check, the event reader) goes through here, so a password in
`KYC_DATABASE_URL` or a provider key never reaches a terminal or a log line:

- `redact_url(url)`: the URL with its user info replaced by `***` (user names stay
  when a password follows, since they help; a lone user name could be a token);
- `url_origin(url)`: `scheme://host[:port]`, nothing else (for provider base URLs);
- `Scrubber`: removes known secret values and any URL user info from free text,
  then `one_line` keeps it to one bounded line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# Environment variables whose values are secrets (matched on the name).
SENSITIVE_NAME = re.compile(r"KEY|SECRET|PASSWORD|PASSPHRASE|TOKEN|PROJECT|SIGN|CREDENTIAL", re.I)
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")
# Shorter values are not removed from texts: they would mangle ordinary words.
_MIN_SECRET_CHARS = 3


def redact_url(url: str) -> str:
    """`url` with any password (and user info that could be a token) replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparsable URL)"
    if parts.username is None and parts.password is None:
        return url
    host = _host(parts.hostname)
    try:
        port = parts.port
    except ValueError:
        port = None
    user = parts.username or ""
    auth = f"{user}:{MASK}@" if parts.password is not None else f"{MASK}@"
    netloc = auth + host + (f":{port}" if port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def url_origin(url: str) -> str:
    """scheme://host[:port] of a URL: no user info, path or query."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return "(unparsable URL)"
    return f"{parts.scheme}://{_host(parts.hostname) or '?'}" + (f":{port}" if port else "")


def url_password(url: str) -> str | None:
    """The password in a URL, if it has one (to scrub it from texts)."""
    try:
        return urlsplit(url.strip()).password or None
    except ValueError:
        return None


def one_line(text: str, limit: int = 200) -> str:
    """`text` on one line (whitespace runs collapsed), cut to `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Scrubber:
    """Removes every known secret (and URL user info) from a text before it is shown."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is removed whole.
        self.secrets = sorted(
            {s for s in secrets if len(s) >= _MIN_SECRET_CHARS}, key=len, reverse=True
        )

    @classmethod
    def from_urls(cls, urls: Iterable[str]) -> Scrubber:
        """The passwords of these URLs."""
        return cls(p for p in map(url_password, urls) if p)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Scrubber:
        """Values of variables named like secrets, and passwords in any URL value."""
        secrets: list[str] = []
        for name, value in env.items():
            if not value:
                continue
            if SENSITIVE_NAME.search(name):
                secrets += [value, value.strip(), value.replace("\\n", "\n").strip()]
            if "://" in value and (password := url_password(value)):
                secrets.append(password)
        return cls(secrets)

    def __call__(self, text: str) -> str:
        text = _URL_USERINFO.sub(lambda m: m["scheme"] + MASK + "@", text)
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


def _host(hostname: str | None) -> str:
    host = hostname or ""
    return f"[{host}]" if ":" in host else host
