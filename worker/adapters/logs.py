"""Log output: structlog configured once per process (JSON lines in production, readable lines
in a terminal).

Secrets and personal data never reach a log line, whoever logged it:

- `redact_sensitive` drops the values of keys that name credentials or personal fields;
- `SecretScrubber` masks, in every text of a line (the message, values, tracebacks), the
  values of this process's secret settings and the user info of any URL
  (`worker.domain.redaction.Scrubber`).

The standard library's records (Celery's, kombu's, redis-py's, SQLAlchemy's warnings) go
through the same processors: the root logger's one handler formats them with structlog's
`ProcessorFormatter`, and tasks/app.py hands Celery's logging set-up to this module.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from worker.domain.redaction import Scrubber

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


class SecretScrubber:
    """A processor masking secret values and URL user info in every text of a line."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.scrub = Scrubber.from_env(os.environ if env is None else env)

    def __call__(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        stack: list[MutableMapping[str, Any]] = [event_dict]
        while stack:
            mapping = stack.pop()
            for key, value in list(mapping.items()):
                if isinstance(value, str):
                    mapping[key] = self.scrub(value)
                elif isinstance(value, MutableMapping):
                    stack.append(value)
        return event_dict


class LineWriter:
    """structlog's logger: one record, one `write` of the whole line, under the lock of the
    standard library's handler.

    Invariant: two records never share a line. structlog's `PrintLogger` prints the message and
    its newline as two writes under its own lock, so a Celery record written by the stdlib
    handler between them glued two JSON objects on one line (seen in CI with a threaded worker);
    a log shipper drops such a line whole.
    """

    def __init__(self, handler: logging.StreamHandler[Any]) -> None:
        self._handler = handler

    def msg(self, message: str) -> None:
        with self._handler.lock or _NO_LOCK:
            stream = self._handler.stream
            stream.write(message + "\n")
            stream.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()


def configure_logging(log_format: str = "auto", level: str = "INFO") -> None:
    """Set up structlog and the standard library's root logger once per process.

    `auto` means console on a TTY, JSON otherwise. Both kinds of records pass the same
    redaction (see the module docstring).
    """
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    scrubber = SecretScrubber()
    handler = logging.StreamHandler(sys.stderr)
    threshold = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_sensitive,
            structlog.processors.format_exc_info,
            scrubber,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=lambda *args: LineWriter(handler),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_logger_name,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            redact_sensitive,
            structlog.processors.format_exc_info,
            scrubber,
            renderer,
        ],
    )
    handler.setFormatter(formatter)
    handler.set_name("kyc-poller")
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(threshold)
