"""The domain event published for every status transition, and where it is published.

Events carry ids and statuses only: names, birth dates, document numbers and
the provider's payload stay in the database. Subscribers dedupe on
`event_id` and order one verification's events by `verification_version`.

Every event goes to two places in one atomic step (see `worker/services/relay.py`):
the pub/sub channel (`DEFAULT_EVENTS_CHANNEL`: live only) and a Redis Stream
(`DEFAULT_EVENTS_STREAM`: kept for a while, replayable, read by consumer groups).
A stream entry has the fields named `STREAM_FIELD_*` below; `event` holds the
same JSON document the channel carries (schema `EVENT_SCHEMA_VERSION`).
`worker/domain/cloudevents.py` turns that document into a CloudEvents 1.0 event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

EVENT_SCHEMA_VERSION = 1
STATUS_CHANGED = "verification.status_changed"

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
    }
