"""The one parser of durations and points in time that people type (CLI options, replay starts).

- `parse_duration("1h30m")`: a positive span in s, m, h, d, w units (combinable);
- `parse_moment("2026-11-23T12:00:00Z")`: an ISO 8601 time that names its zone (a naive
  time is ambiguous between hosts, so it is refused rather than guessed);
- `parse_since(text, now)`: either of the two, a duration counting back from `now`.

Errors are `ValueError`s whose text quotes at most 40 characters of the input.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# Nothing kyc-poller keeps is older than this; a larger span is a typo.
MAX_DURATION_SECONDS = 3650 * 86400


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `2h`, `1d`, `1w`, or combinations such as `1h30m`; ValueError if not."""
    compact = text.strip().lower().replace(" ", "")
    if not compact or _DURATION_PART.sub("", compact):
        raise ValueError(f"not a duration: {text[:40]!r} (expected e.g. 90s, 30m, 2h, 1d or 1h30m)")
    seconds = sum(
        float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(compact)
    )
    if seconds <= 0 or seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"duration out of range: {text[:40]!r}")
    return timedelta(seconds=seconds)


def parse_moment(text: str) -> datetime:
    """An ISO 8601 time with a zone (`Z` or `+hh:mm`); ValueError for anything else."""
    cleaned = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(
            f"{text[:40]!r} is not an ISO 8601 time (e.g. 2026-11-23T12:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f"{text[:40]!r} has no time zone (add Z or +00:00)")
    return moment


def parse_since(text: str, now: datetime) -> datetime:
    """A duration back from `now` (`15m`) or an ISO 8601 time with a zone."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        return parse_moment(text)
    except ValueError as exc:
        if "time zone" in str(exc):
            raise
        raise ValueError(
            f"{text[:40]!r} is neither a duration (15m, 2h) nor an ISO 8601 time "
            "(2026-11-23T12:00:00Z)"
        ) from None


def format_span(seconds: float) -> str:
    """A span for people: `42s`, `5m07s`, `3h05m`, `2d04h` (sign dropped)."""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m{int(seconds % 60):02d}s"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h{minutes % 60:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"
