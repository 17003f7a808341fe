"""Helper for services that listen to kyc-poller's events (`kyc-events` prints them).

Pub/sub delivers to whoever is subscribed at the moment of publishing; the
helper parses each message, skips anything that is not a kyc-poller event,
and drops repeats of an event id it has already yielded.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import redis
from redis.client import PubSub

from worker.config import Settings
from worker.domain.events import EVENT_SCHEMA_VERSION

REQUIRED_FIELDS = ("event_id", "event_type", "schema_version", "verification_id", "to_status")


class _RecentIds:
    """A bounded memory of event ids already delivered."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def seen(self, event_id: str) -> bool:
        if event_id in self._ids:
            return True
        self._ids[event_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return False


def parse_event(raw: bytes | str) -> dict[str, Any] | None:
    """Decode one channel message; None if it is not a kyc-poller event we understand."""
    try:
        event = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(event, dict) or any(name not in event for name in REQUIRED_FIELDS):
        return None
    if event["schema_version"] != EVENT_SCHEMA_VERSION:
        return None
    return event


def iter_events(
    client: redis.Redis,
    channel: str,
    *,
    poll_timeout: float = 1.0,
    dedupe_size: int = 100_000,
    yield_idle: bool = False,
) -> Iterator[dict[str, Any] | None]:
    """Yield events from `channel` forever; with `yield_idle`, also None after each idle wait."""
    recent = _RecentIds(dedupe_size)
    pubsub: PubSub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    try:
        while True:
            message = pubsub.get_message(timeout=poll_timeout)
            if message is None:
                if yield_idle:
                    yield None
                continue
            event = parse_event(message["data"])
            if event is not None and not recent.seen(event["event_id"]):
                yield event
    finally:
        pubsub.close()


class BackgroundSubscriber:
    """Collects a channel's events on a daemon thread (the demo and the end-to-end tests).

    The constructor returns once the subscription is live, so nothing published
    afterwards is missed.
    """

    def __init__(self, redis_url: str, channel: str, *, ready_timeout: float = 10.0) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._stopping = threading.Event()
        ready = threading.Event()

        def run() -> None:
            client = redis.Redis.from_url(redis_url)
            for event in iter_events(client, channel, poll_timeout=0.2, yield_idle=True):
                ready.set()
                if self._stopping.is_set():
                    return
                if event is not None:
                    self.events.put(event)

        threading.Thread(target=run, name="event-subscriber", daemon=True).start()
        if not ready.wait(ready_timeout):
            raise RuntimeError(f"could not subscribe to {channel!r} within {ready_timeout:.0f}s")

    def received(self) -> list[dict[str, Any]]:
        """Every event collected so far, in arrival order."""
        return list(self.events.queue)

    def stop(self) -> None:
        self._stopping.set()


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description="Print kyc-poller events as JSON lines.")
    parser.add_argument("--redis-url", default=settings.redis_url)
    parser.add_argument("--channel", default=settings.events_channel)
    args = parser.parse_args(argv)
    client = redis.Redis.from_url(args.redis_url)
    try:
        for event in iter_events(client, args.channel):
            print(json.dumps(event, sort_keys=True), flush=True)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
