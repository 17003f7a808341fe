"""kyc-poller's events as CloudEvents 1.0 (structured JSON mode).

The stored and published document stays the legacy one (`worker/domain/events.py`,
`schema_version` 1); a CloudEvent is derived from it, deterministically, by
whoever asks for one (the subscriber helper, `kyc-events --cloudevents`):

    specversion      "1.0"
    id               the event's `event_id` (so dedupe works the same on both forms)
    source           "kyc-poller" (configurable: a URI-reference naming this deployment)
    type             "com.kyc-poller.<event_type>.v<schema_version>",
                     e.g. "com.kyc-poller.verification.status_changed.v1"
    subject          "<provider>/<external_id>", e.g. "gu1/val-123"
    time             the event's `occurred_at` (RFC 3339, UTC)
    datacontenttype  "application/json"
    data             the legacy event document, unchanged (schema_version included)

    signingkeyid     the key that signed `data` (an extension attribute; only for signed
                     events): `data` holds `signing_key_id` and `signature`, verify `data`

A breaking change to `data` raises the schema version and with it the `v<N>` suffix
of `type`, so a consumer can route on `type` alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from worker.domain.events import REQUIRED_EVENT_FIELDS
from worker.domain.signatures import CLOUDEVENT_KEY_ID_ATTRIBUTE, KEY_ID_FIELD

SPEC_VERSION = "1.0"
DEFAULT_SOURCE = "kyc-poller"
TYPE_PREFIX = "com.kyc-poller."
DATA_CONTENT_TYPE = "application/json"

# Every attribute a kyc-poller CloudEvent has (all of them set, none null).
ATTRIBUTES = (
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "data",
)

_TYPE = re.compile(r"^com\.kyc-poller\.(?P<event_type>[a-z0-9_.]+)\.v(?P<version>[0-9]+)$")


class NotAKycCloudEvent(ValueError):
    """A document that is not a CloudEvent made by `to_cloudevent`."""


def cloudevent_type(event_type: str, schema_version: int) -> str:
    """The CloudEvents `type` for a legacy event type and its schema version."""
    return f"{TYPE_PREFIX}{event_type}.v{schema_version}"


def to_cloudevent(event: Mapping[str, Any], *, source: str = DEFAULT_SOURCE) -> dict[str, Any]:
    """The CloudEvent (structured JSON, a dict ready for json.dumps) for one event document."""
    missing = [name for name in (*REQUIRED_EVENT_FIELDS, "occurred_at") if name not in event]
    if missing:
        raise NotAKycCloudEvent(f"not a kyc-poller event: {', '.join(missing)} missing")
    blank = [
        name
        for name in ("event_id", "event_type", "occurred_at")
        if not isinstance(event[name], str) or not event[name]
    ]
    if blank:  # id and type must be non-empty strings, time an RFC 3339 timestamp
        raise NotAKycCloudEvent(f"not a kyc-poller event: {', '.join(blank)} not a string")
    if not source:
        raise ValueError("a CloudEvent needs a non-empty source")
    provider = event.get("provider")
    external_id = event.get("external_id")
    subject = (
        f"{provider}/{external_id}"
        if provider and external_id
        else f"verification/{event['verification_id']}"
    )
    cloudevent = {
        "specversion": SPEC_VERSION,
        "id": str(event["event_id"]),
        "source": source,
        "type": cloudevent_type(str(event["event_type"]), int(event["schema_version"])),
        "subject": subject,
        "time": str(event["occurred_at"]),
        "datacontenttype": DATA_CONTENT_TYPE,
        "data": dict(event),
    }
    key_id = event.get(KEY_ID_FIELD)
    if isinstance(key_id, str) and key_id:
        cloudevent[CLOUDEVENT_KEY_ID_ATTRIBUTE] = key_id
    return cloudevent


def from_cloudevent(cloudevent: Mapping[str, Any]) -> dict[str, Any]:
    """The legacy event document inside a CloudEvent made by `to_cloudevent`."""
    if cloudevent.get("specversion") != SPEC_VERSION:
        raise NotAKycCloudEvent(f"specversion {cloudevent.get('specversion')!r}, not 1.0")
    match = _TYPE.match(str(cloudevent.get("type", "")))
    if match is None:
        raise NotAKycCloudEvent(f"type {cloudevent.get('type')!r} is not a kyc-poller type")
    data = cloudevent.get("data")
    if not isinstance(data, dict) or data.get("event_id") != cloudevent.get("id"):
        raise NotAKycCloudEvent("data is not the event the CloudEvent describes")
    return dict(data)
