"""Log output: structlog configured once per process (JSON lines in production, readable lines
in a terminal).

Secrets and personal data never reach a log line: a processor drops the
values of keys that name credentials or personal fields, whatever logged them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

REDACTED = "[redacted]"
# Lower-cased key fragments whose values are never logged.
SENSITIVE_KEY_PARTS = (
    "api_key",
    "apikey",
    "x-api-key",
    "authorization",
    "password",
    "secret",
    "signature",
    "partner-sign",
    "token",
    "first_name",
    "firstname",
    "last_name",
    "lastname",
    "birth",
    "document",
    "payload",
    "extracted",
    "wallet",
)


def _is_sensitive(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in SENSITIVE_KEY_PARTS)


def redact_sensitive(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace the value of every sensitive key (recursively in dicts) with a marker."""

    def scrub(mapping: MutableMapping[str, Any]) -> None:
        for key, value in list(mapping.items()):
            if key == "event":
                continue
            if _is_sensitive(str(key)):
                mapping[key] = REDACTED
            elif isinstance(value, MutableMapping):
                scrub(value)

    scrub(event_dict)
    return event_dict


def configure_logging(log_format: str = "auto", level: str = "INFO") -> None:
    """Set up structlog once per process; `auto` means console on a TTY, JSON otherwise."""
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_sensitive,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
