"""The domain event published for every status transition, and where it is published.

Events carry ids, statuses and the adapter's non-personal `summary` of the
answer (per-check results, counts, descriptions: `event_summary` bounds it and
keeps it float-free): names, birth dates, document numbers and the provider's
payload stay in the database. Subscribers dedupe on `event_id` and order one
verification's events by `verification_version`.

Invariant: no floating-point number in an event document (events are signed over
a canonical JSON form, RFC 8785, and every language must canonicalize them alike):
a float in a summary is rendered as its shortest decimal string ("97.4"), and an
integer outside ±(2**53 - 1) as its decimal string.

Every event goes to two places in one atomic step (see `worker/services/relay.py`):
the pub/sub channel (`DEFAULT_EVENTS_CHANNEL`: live only) and a Redis Stream
(`DEFAULT_EVENTS_STREAM`: kept for a while, replayable, read by consumer groups).
A stream entry has the fields named `STREAM_FIELD_*` below; `event` holds the
same JSON document the channel carries (schema `EVENT_SCHEMA_VERSION`).
`worker/domain/cloudevents.py` turns that document into a CloudEvents 1.0 event.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

EVENT_SCHEMA_VERSION = 1
STATUS_CHANGED = "verification.status_changed"
# An approval must be verified again (its own type: no status changed). Same fields as a
# status change (from_status = to_status = the status it keeps), plus "reverification".
REVERIFICATION_DUE = "verification.reverification_due"
EVENT_TYPES = (STATUS_CHANGED, REVERIFICATION_DUE)

DEFAULT_EVENTS_CHANNEL = "kyc.verification.events"


def stream_for_channel(channel: str) -> str:
    """The stream that goes with a channel when none is configured: `<channel>.stream`."""
    return f"{channel}.stream"


DEFAULT_EVENTS_STREAM = stream_for_channel(DEFAULT_EVENTS_CHANNEL)

# The fields of one stream entry (stream entry format 1).
STREAM_FIELD_EVENT = "event"  # the event document, JSON (the channel's message, byte for byte)
STREAM_FIELD_EVENT_ID = "event_id"
STREAM_FIELD_VERIFICATION_ID = "verification_id"

# What every event document has, whatever its schema version.
REQUIRED_EVENT_FIELDS = (
    "event_id",
    "event_type",
    "schema_version",
    "verification_id",
    "to_status",
)


@dataclass(frozen=True)
class StatusChange:
    """Everything an event says about one transition (no personal data by construction)."""

    verification_id: int
    verification_version: int
    provider: str
    external_id: str
    verification_type: str | None
    from_status: str
    to_status: str
    terminal: bool
    provider_status: str | None
    reason: str  # provider | provider_error | timed_out
    error_code: str | None
    related_external_id: str | None
    occurred_at: datetime
    # The adapter's non-personal summary of the answer behind the change ({} when no
    # answer made it: timed_out, provider_error, operator_retry).
    summary: Mapping[str, Any] = field(default_factory=dict)


# Bounds of an event's summary (it rides in every event: the channel, the stream, the outbox).
MAX_SUMMARY_BYTES = 2048
MAX_SUMMARY_DEPTH = 3
MAX_SUMMARY_ITEMS = 32
MAX_SUMMARY_TEXT = 200
MAX_SUMMARY_KEY = 64
SAFE_INTEGER = 2**53 - 1
SUMMARY_OMITTED = {"_omitted": "too_large"}


def event_summary(summary: Mapping[str, Any] | None) -> dict[str, Any]:
    """A summary fit for an event: float-free, at most MAX_SUMMARY_BYTES of JSON.

    Objects keep their first MAX_SUMMARY_ITEMS string keys (each at most
    MAX_SUMMARY_KEY chars), lists their first MAX_SUMMARY_ITEMS items, strings
    MAX_SUMMARY_TEXT chars; nesting below MAX_SUMMARY_DEPTH is dropped. Floats and
    unsafe integers become decimal strings. Still too large: SUMMARY_OMITTED.
    """
    if not isinstance(summary, Mapping):
        return {}
    cleaned = _bounded_object(summary, 1)
    size = len(json.dumps(cleaned, ensure_ascii=False, separators=(",", ":")).encode())
    return cleaned if size <= MAX_SUMMARY_BYTES else dict(SUMMARY_OMITTED)


def _bounded_object(value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if len(out) >= MAX_SUMMARY_ITEMS:
            break
        if not isinstance(key, str) or not key or len(key) > MAX_SUMMARY_KEY:
            continue
        kept = _bounded_value(item, depth)
        if kept is not _DROP:
            out[key] = kept
    return out


_DROP = object()


def _bounded_value(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -SAFE_INTEGER <= value <= SAFE_INTEGER else str(value)
    if isinstance(value, float):
        return repr(value)  # the shortest string that reads back as the same number
    if isinstance(value, str):
        return value[:MAX_SUMMARY_TEXT]
    if depth >= MAX_SUMMARY_DEPTH:
        return _DROP
    if isinstance(value, Mapping):
        return _bounded_object(value, depth + 1)
    if isinstance(value, list | tuple):
        items = (_bounded_value(item, depth + 1) for item in value[:MAX_SUMMARY_ITEMS])
        return [item for item in items if item is not _DROP]
    return _DROP


def build_status_event(change: StatusChange, event_id: str | None = None) -> dict[str, Any]:
    """The JSON-ready event document for a transition."""
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": STATUS_CHANGED,
        "schema_version": EVENT_SCHEMA_VERSION,
        "verification_id": change.verification_id,
        "verification_version": change.verification_version,
        "provider": change.provider,
        "external_id": change.external_id,
        "verification_type": change.verification_type,
        "from_status": change.from_status,
        "to_status": change.to_status,
        "terminal": change.terminal,
        "provider_status": change.provider_status,
        "reason": change.reason,
        "error_code": change.error_code,
        "related_external_id": change.related_external_id,
        "occurred_at": change.occurred_at.isoformat(),
        "summary": event_summary(change.summary),
    }


@dataclass(frozen=True)
class ReverificationDue:
    """Everything a reverification_due event says (no personal data by construction)."""

    verification_id: int
    verification_version: int
    provider: str
    external_id: str
    verification_type: str | None
    status: str  # the status it keeps (approved)
    provider_status: str | None
    trigger: str  # needs_reverification | expired
    expires_at: datetime | None
    occurred_at: datetime
    summary: Mapping[str, Any] = field(default_factory=dict)


def build_reverification_event(
    notice: ReverificationDue, event_id: str | None = None
) -> dict[str, Any]:
    """The JSON-ready event document saying an approval must be verified again.

    It has every field a status change has, so readers of either keep working:
    from_status = to_status (nothing changed), terminal true, reason "provider" (the
    provider's flag or date), and `reverification` {"trigger", "expires_at"}.
    """
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": REVERIFICATION_DUE,
        "schema_version": EVENT_SCHEMA_VERSION,
        "verification_id": notice.verification_id,
        "verification_version": notice.verification_version,
        "provider": notice.provider,
        "external_id": notice.external_id,
        "verification_type": notice.verification_type,
        "from_status": notice.status,
        "to_status": notice.status,
        "terminal": True,
        "provider_status": notice.provider_status,
        "reason": "provider",
        "error_code": None,
        "related_external_id": None,
        "occurred_at": notice.occurred_at.isoformat(),
        "summary": event_summary(notice.summary),
        "reverification": {
            "trigger": notice.trigger,
            "expires_at": None if notice.expires_at is None else notice.expires_at.isoformat(),
        },
    }
