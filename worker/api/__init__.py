"""What apps import: the tracking client and the event readers.

    from worker.api import KycClient, GroupConsumer, iter_events, replay

A cheap import: it loads no provider adapter, no aiohttp, no cryptography and no
Celery (a test holds it to that). Everything here takes its URLs and names
explicitly and reads none of the fleet's settings.
"""

from worker.api.client import KycClient
from worker.api.events import (
    BackgroundSubscriber,
    EventGate,
    GroupConsumer,
    StreamEvent,
    check_stream_id,
    id_before,
    iter_events,
    parse_entry,
    parse_event,
    replay,
    stream_id_at,
)
from worker.api.signing_keys import reader_verifier, require_verifier
from worker.domain.events import DEFAULT_EVENTS_CHANNEL, DEFAULT_EVENTS_STREAM
from worker.domain.signatures import EventVerifier, SignatureOutcome

__all__ = [
    "DEFAULT_EVENTS_CHANNEL",
    "DEFAULT_EVENTS_STREAM",
    "BackgroundSubscriber",
    "EventGate",
    "EventVerifier",
    "GroupConsumer",
    "KycClient",
    "SignatureOutcome",
    "StreamEvent",
    "check_stream_id",
    "id_before",
    "iter_events",
    "parse_entry",
    "parse_event",
    "reader_verifier",
    "replay",
    "require_verifier",
    "stream_id_at",
]
