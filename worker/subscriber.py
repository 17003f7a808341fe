"""Moved to `worker.api.events` (import from `worker.api`); re-exported for one release.

`python -m worker.subscriber` is `kyc-events`, the alias of `kyc-poller events`.
"""

import sys

from worker.api.events import (
    DEFAULT_BLOCK_SECONDS,
    DEFAULT_CLAIM_IDLE_SECONDS,
    DEFAULT_COUNT,
    DEFAULT_DEDUPE_SIZE,
    REQUIRED_FIELDS,
    BackgroundSubscriber,
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
from worker.entrypoints.cli import kyc_events_main as main

__all__ = [
    "DEFAULT_BLOCK_SECONDS",
    "DEFAULT_CLAIM_IDLE_SECONDS",
    "DEFAULT_COUNT",
    "DEFAULT_DEDUPE_SIZE",
    "REQUIRED_FIELDS",
    "BackgroundSubscriber",
    "GroupConsumer",
    "StreamEvent",
    "check_stream_id",
    "id_before",
    "iter_events",
    "main",
    "parse_entry",
    "parse_event",
    "replay",
    "stream_id_at",
]

if __name__ == "__main__":
    sys.exit(main())
