"""Scripts: what a fake session answers to successive status requests.

A script is a non-empty list of steps; each request consumes the next one and
the last step repeats forever (or, for a session added with "loop": true, the
script starts over). A step is either a status word in the
provider's own vocabulary (rendered as-is, even when no adapter knows it) or a
dict: {"status": word, ...extras} (e.g. Bank131's "earlier_id", gu1's
"decision", "expires_in", "needs_reverification") or a fault {"fault": name, ...options}.
A status step's "after_sync" word is answered instead once the session has been
synced (gu1's sync endpoint).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Fault name -> what it does (the server and the providers render them).
FAULTS: dict[str, str] = {
    "server_error": "a 5xx (http_status, default 500), not JSON",
    "rate_limited": "HTTP 429 with Retry-After (retry_after: seconds or an HTTP-date string)",
    "timeout": "sleep `delay` seconds (default 2), then answer `status` or the last status",
    "garbage": "HTTP 200 with a body that is not JSON",
    "not_object": "HTTP 200 with a JSON body that is not an object",
    "malformed": "HTTP 200 with provider-shaped JSON that has no status",
    "not_found": "the provider's 404 for an unknown session",
    "http_error": "any status (http_status, default 400) with a small generic JSON body",
}
MAX_DELAY_SECONDS = 120.0


@dataclass(frozen=True)
class Step:
    """One scripted answer: a status word, or a fault."""

    status: str | None = None
    fault: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def option(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)


def parse_script(script: object) -> tuple[Step, ...]:
    """Validate a script (list of steps) and return its steps; ValueError says what is wrong."""
    if isinstance(script, str | bytes) or not isinstance(script, Sequence) or not script:
        raise ValueError("a script must be a non-empty list of steps")
    return tuple(parse_step(raw, index) for index, raw in enumerate(script))


def parse_step(raw: object, index: int = 0) -> Step:
    where = f"script step {index}"
    if isinstance(raw, str):
        if not raw:
            raise ValueError(f"{where}: a status word must not be empty")
        return Step(status=raw)
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: must be a status word or an object, got {type(raw).__name__}")
    options = {key: value for key, value in raw.items() if key not in {"status", "fault"}}
    status = raw.get("status")
    if status is not None and (not isinstance(status, str) or not status):
        raise ValueError(f"{where}: 'status' must be a non-empty string")
    fault = raw.get("fault")
    if fault is None:
        if status is None:
            raise ValueError(f"{where}: an object step needs 'status' or 'fault'")
        return Step(status=status, options=options)
    if fault not in FAULTS:
        raise ValueError(f"{where}: unknown fault {fault!r}; known: {', '.join(FAULTS)}")
    _check_options(where, options)
    return Step(status=status, fault=fault, options=options)


def _check_options(where: str, options: Mapping[str, Any]) -> None:
    http_status = options.get("http_status")
    if http_status is not None and (
        isinstance(http_status, bool)
        or not isinstance(http_status, int)
        or not 100 <= http_status <= 599
    ):
        raise ValueError(f"{where}: http_status must be an HTTP status code (100-599)")
    delay = options.get("delay")
    if delay is not None and (
        isinstance(delay, bool)
        or not isinstance(delay, int | float)
        or not 0 <= delay <= MAX_DELAY_SECONDS
    ):
        raise ValueError(f"{where}: delay must be a number of seconds (0-{MAX_DELAY_SECONDS:g})")
    retry_after = options.get("retry_after")
    if retry_after is not None and (
        isinstance(retry_after, bool) or not isinstance(retry_after, int | float | str)
    ):
        raise ValueError(f"{where}: retry_after must be seconds or an HTTP-date string")


def step_to_json(step: Step) -> str | dict[str, Any]:
    """The step as it would be written in a script (for the admin API)."""
    if step.fault is None and not step.options:
        return step.status or ""
    document: dict[str, Any] = dict(step.options)
    if step.fault is not None:
        document["fault"] = step.fault
    if step.status is not None:
        document["status"] = step.status
    return document
