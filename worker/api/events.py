"""Reading kyc-poller's events: what a subscriber imports (`kyc-poller events` prints them).

Every event is published twice, atomically (`worker/services/relay.py`): on a pub/sub
channel and in a Redis Stream. Three ways to read them:

- `iter_events(client, channel)`: pub/sub. Live only: at most once, and only to
  whoever is subscribed at that moment; nothing is kept for a subscriber that is away.
- `GroupConsumer(client, stream, group, consumer).run(handler)`: a consumer group.
  At least once: an entry is acknowledged (XACK) only after `handler` returned, so one
  whose consumer died before that stays pending and is delivered again, to the same
  consumer name when it restarts (its pending entries are read first) or to another
  consumer of the group once it has been idle `claim_idle_seconds` (XAUTOCLAIM).
  The group remembers its position: a consumer that was away catches up on every
  event the stream still holds.
- `replay(client, stream, from_id=… | after_id=… | since=…)`: reads the stream from a
  point (no group, nothing acknowledged), then follows it live unless `follow=False`.

Every reader verifies each event's signature (`EventGate`: workers sign every event with
Ed25519, `worker.domain.signatures`) and drops, counts and logs anything unsigned, signed
with an unknown key, forged or altered; only `verify=False` turns that off. Every reader
drops repeats of an event id within a bounded memory (`dedupe_size` ids),
skips anything that is not a kyc-poller event it understands, and hands over the
legacy event document (`schema_version` 1); `worker.domain.cloudevents.to_cloudevent`
turns one into a CloudEvent.

Order: the stream holds one verification's events in `verification_version` order
and a single reader sees them in stream order. A consumer group spreads entries over
its consumers, and a claimed (redelivered) entry arrives after newer ones: consumers
that need order per verification skip an event whose `verification_version` is not
above the last one they applied.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis
from redis.client import PubSub

from worker.api.signing_keys import require_verifier
from worker.domain.events import (
    DEFAULT_EVENTS_STREAM,
    EVENT_SCHEMA_VERSION,
    REQUIRED_EVENT_FIELDS,
    STREAM_FIELD_EVENT,
)
from worker.domain.signatures import EventVerifier

log = logging.getLogger(__name__)

REQUIRED_FIELDS = REQUIRED_EVENT_FIELDS

DEFAULT_COUNT = 100
DEFAULT_BLOCK_SECONDS = 5.0
DEFAULT_CLAIM_IDLE_SECONDS = 60.0
DEFAULT_DEDUPE_SIZE = 100_000

_STREAM_ID = re.compile(r"^(?P<ms>[0-9]{1,20})(?:-(?P<seq>[0-9]{1,20}))?$")
_MAX_SEQ = 2**64 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _RecentIds:
    """A bounded memory of event ids already delivered."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)

    def seen(self, event_id: str) -> bool:
        """Was it seen before? Remembers it either way."""
        if event_id in self._ids:
            return True
        self.add(event_id)
        return False


@dataclass(frozen=True)
class StreamEvent:
    """One event read from the stream, with the entry id it has there."""

    stream_id: str
    event: dict[str, Any]


# --------------------------------------------------------------------------- parsing


def parse_event(raw: bytes | str) -> dict[str, Any] | None:
    """Decode one event document; None if it is not a kyc-poller event we understand."""
    try:
        event = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None  # RecursionError: nesting deeper than the parser goes
    if not isinstance(event, dict) or any(name not in event for name in REQUIRED_FIELDS):
        return None
    if event["schema_version"] != EVENT_SCHEMA_VERSION:
        return None
    if not isinstance(event["event_id"], str) or not event["event_id"]:
        return None  # ids are deduplicated by value: only a non-empty string will do
    return event


def parse_entry(fields: Mapping[Any, Any] | None) -> dict[str, Any] | None:
    """The event in one stream entry's fields (bytes or str keys); None if there is none."""
    if not fields:
        return None  # an entry deleted (trimmed) while it was pending
    raw = fields.get(STREAM_FIELD_EVENT.encode(), fields.get(STREAM_FIELD_EVENT))
    if not isinstance(raw, bytes | str):
        return None
    return parse_event(raw)


def raw_of_entry(fields: Mapping[Any, Any] | None) -> bytes | str | None:
    if not fields:
        return None  # an entry deleted (trimmed) while it was pending
    raw = fields.get(STREAM_FIELD_EVENT.encode(), fields.get(STREAM_FIELD_EVENT))
    return raw if isinstance(raw, bytes | str) else None


# --------------------------------------------------------------------------- signatures

NOT_AN_EVENT = "not_an_event"  # not JSON, not ours, or a schema version we do not know


class EventGate:
    """What every reader hands over: events that parse and whose signature holds.

    Workers sign every event (`worker.domain.signatures`); a reader verifies by default and
    drops (counts in `dropped`, by reason, and logs) anything unsigned, signed with a key it
    does not hold, forged or altered. Turning verification off is explicit: `verify=False`.
    Without a `verifier` the keys come from the environment (`worker.api.signing_keys`:
    KYC_EVENT_VERIFY_KEYS); none there is a ConfigurationError saying so.
    """

    # A drop is logged the first time for each reason, then every this many.
    LOG_EVERY = 1000

    def __init__(self, verifier: EventVerifier | None = None, *, verify: bool = True) -> None:
        if verify and verifier is None:
            verifier = require_verifier()
        self.verifier = verifier if verify else None
        self.dropped: Counter[str] = Counter()

    def admit(self, raw: bytes | str | None) -> dict[str, Any] | None:
        """The event in a message, or None (dropped and counted)."""
        event = parse_event(raw) if raw is not None else None
        if event is None:
            if raw is not None:
                self._drop(NOT_AN_EVENT, None)
            return None
        if self.verifier is not None:
            check = self.verifier.verify(event)
            if not check.valid:
                self._drop(check.outcome.value, event.get("event_id"), check.key_id)
                return None
        return event

    def _drop(self, reason: str, event_id: object, key_id: str | None = None) -> None:
        self.dropped[reason] += 1
        if self.dropped[reason] % self.LOG_EVERY == 1:
            log.warning(
                "event dropped (%s; %d so far): event_id=%.64r key_id=%r",
                reason,
                self.dropped[reason],
                event_id if isinstance(event_id, str) else None,
                key_id,
            )


def _gate(gate: EventGate | None, verifier: EventVerifier | None, verify: bool) -> EventGate:
    return gate if gate is not None else EventGate(verifier, verify=verify)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# --------------------------------------------------------------------------- stream ids


def check_stream_id(text: str) -> str:
    """`text` as a stream id (`<ms>` or `<ms>-<seq>`); ValueError if it is not one."""
    match = _STREAM_ID.match(text.strip())
    if match is None:
        raise ValueError(f"not a stream id: {text!r} (expected <milliseconds>-<sequence>)")
    ms, seq = int(match["ms"]), int(match["seq"] or 0)
    if ms > _MAX_SEQ or seq > _MAX_SEQ:
        raise ValueError(f"stream id out of range: {text!r}")
    return f"{ms}-{seq}"


def stream_id_at(moment: datetime) -> str:
    """The first stream id at or after `moment` (`<ms>-0`): entries added from then on."""
    if moment.tzinfo is None:
        raise ValueError("give a time zone (e.g. 2026-11-23T12:00:00Z): naive times are ambiguous")
    ms = (moment - _EPOCH) // timedelta(milliseconds=1)
    if ms < 0:
        raise ValueError(f"{moment.isoformat()} is before 1970")
    return f"{ms}-0"


def id_before(stream_id: str) -> str:
    """The largest id below `stream_id`: reading after it includes `stream_id` itself."""
    ms_text, seq_text = check_stream_id(stream_id).split("-")
    ms, seq = int(ms_text), int(seq_text)
    if seq > 0:
        return f"{ms}-{seq - 1}"
    if ms > 0:
        return f"{ms - 1}-{_MAX_SEQ}"
    return "0-0"


def start_after(*, from_id: str | None, after_id: str | None, since: datetime | None) -> str:
    """The exclusive position to read after, from exactly one of the three ways to say it."""
    given = [
        name
        for name, value in (("from_id", from_id), ("after_id", after_id), ("since", since))
        if value is not None
    ]
    if len(given) != 1:
        raise ValueError(f"give exactly one of from_id, after_id, since (got {given or 'none'})")
    if from_id is not None:
        return id_before(from_id)
    if after_id is not None:
        return check_stream_id(after_id)
    assert since is not None
    return id_before(stream_id_at(since))


def _entries(reply: Any) -> list[tuple[str, Mapping[Any, Any] | None]]:
    """The entries of an XREAD/XREADGROUP reply for one stream (RESP2 or RESP3)."""
    if not reply:
        return []
    streams = reply.values() if isinstance(reply, dict) else [item[1] for item in reply]
    entries: list[tuple[str, Mapping[Any, Any] | None]] = []
    for stream_entries in streams:
        # RESP3 wraps each stream's entries in one more list.
        if stream_entries and isinstance(stream_entries[0], list):
            stream_entries = stream_entries[0]
        for entry_id, fields in stream_entries:
            if entry_id is not None:
                entries.append((_text(entry_id), fields))
    return entries


# --------------------------------------------------------------------------- pub/sub


def iter_events(
    client: redis.Redis,
    channel: str,
    *,
    poll_timeout: float = 1.0,
    dedupe_size: int = DEFAULT_DEDUPE_SIZE,
    yield_idle: bool = False,
    verifier: EventVerifier | None = None,
    verify: bool = True,
    gate: EventGate | None = None,
) -> Iterator[dict[str, Any] | None]:
    """Yield events from `channel` forever; with `yield_idle`, also None after each idle wait.

    Pub/sub: only what is published while subscribed arrives; nothing is kept. Signatures
    are checked (see `EventGate`; pass a `gate` to read its `dropped` counts).
    """
    admit = _gate(gate, verifier, verify).admit
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
            event = admit(message["data"])
            if event is not None and not recent.seen(event["event_id"]):
                yield event
    finally:
        pubsub.close()


# --------------------------------------------------------------------------- replay


def replay(
    client: redis.Redis,
    stream: str = DEFAULT_EVENTS_STREAM,
    *,
    from_id: str | None = None,
    after_id: str | None = None,
    since: datetime | None = None,
    follow: bool = True,
    count: int = DEFAULT_COUNT,
    block_seconds: float = DEFAULT_BLOCK_SECONDS,
    dedupe_size: int = DEFAULT_DEDUPE_SIZE,
    yield_idle: bool = False,
    verifier: EventVerifier | None = None,
    verify: bool = True,
    gate: EventGate | None = None,
) -> Iterator[StreamEvent | None]:
    """Yield the stream's events from a point on, in stream order.

    Exactly one start: `from_id` (that entry and later ones), `after_id` (the entries
    after it: pass the last `stream_id` you processed to resume) or `since` (entries
    added to the stream at or after that time: every event that occurred then or later,
    and possibly a few that occurred just before but were published after it). Only what
    the stream's retention kept can be replayed. With `follow` (default) it then waits
    for new entries (`block_seconds` per wait; with `yield_idle`, None after an idle
    wait) and never ends; without, it ends once it has caught up.
    Reads at most `count` entries per call to Redis; nothing is acknowledged. Signatures
    are checked (see `EventGate`).
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    admit = _gate(gate, verifier, verify).admit
    last = start_after(from_id=from_id, after_id=after_id, since=since)
    recent = _RecentIds(dedupe_size)
    block_ms = max(1, int(block_seconds * 1000))
    while True:
        reply = client.xread({stream: last}, count=count, block=block_ms if follow else None)
        entries = _entries(reply)
        if not entries:
            if not follow:
                return
            if yield_idle:
                yield None
            continue
        for entry_id, fields in entries:
            last = entry_id
            event = admit(raw_of_entry(fields))
            if event is not None and not recent.seen(event["event_id"]):
                yield StreamEvent(entry_id, event)


# --------------------------------------------------------------------------- consumer group

Handler = Callable[[StreamEvent], object]


class GroupConsumer:
    """One consumer of a Redis consumer group over the events stream (at least once).

    Each round it first takes over entries other consumers left pending longer than
    `claim_idle_seconds` (XAUTOCLAIM, at most every `claim_interval_seconds`), reads
    its own pending entries (after a restart or a lost reply), then new ones (XREADGROUP
    `>`, at most `count`, blocking up to `block_seconds`). Each event goes to the
    handler and is acknowledged once the handler returns; if the handler raises, the
    entry stays pending and the exception propagates. The client's socket timeout (if
    any) must be longer than `block_seconds`.
    """

    def __init__(
        self,
        client: redis.Redis,
        stream: str = DEFAULT_EVENTS_STREAM,
        group: str = "kyc-events",
        consumer: str = "consumer-1",
        *,
        start_id: str = "$",
        count: int = DEFAULT_COUNT,
        block_seconds: float = DEFAULT_BLOCK_SECONDS,
        claim_idle_seconds: float = DEFAULT_CLAIM_IDLE_SECONDS,
        claim_interval_seconds: float | None = None,
        dedupe_size: int = DEFAULT_DEDUPE_SIZE,
        clock: Callable[[], float] = time.monotonic,
        verifier: EventVerifier | None = None,
        verify: bool = True,
        gate: EventGate | None = None,
    ) -> None:
        if not group or not consumer:
            raise ValueError("a consumer group and a consumer name are needed")
        if count < 1:
            raise ValueError("count must be at least 1")
        if claim_idle_seconds <= 0:
            raise ValueError("claim_idle_seconds must be positive")
        self.client = client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.start_id = start_id if start_id == "$" else check_stream_id(start_id)
        self.count = count
        self.block_ms = max(1, int(block_seconds * 1000))
        self.claim_idle_ms = max(1, int(claim_idle_seconds * 1000))
        self.claim_interval = (
            claim_idle_seconds / 2 if claim_interval_seconds is None else claim_interval_seconds
        )
        self.clock = clock
        # Signatures checked; what was dropped is counted in `self.gate.dropped`.
        self.gate = _gate(gate, verifier, verify)
        self._recent = _RecentIds(dedupe_size)
        self._own_pending_from: str | None = "0-0"  # read our own pending entries first
        self._claim_cursor = "0-0"
        self._next_claim = 0.0
        self._group_ready = False
        self._group_seen = False

    # ------------------------------------------------------------------ setup

    def ensure_group(self) -> bool:
        """Create the group (and the stream) if missing, starting after `start_id`.

        `start_id` is "$" (only events added from now on) or a stream id (the entries
        after it). Returns True if it created the group; an existing group keeps its
        position. A group this consumer saw before and finds gone again (Redis lost it)
        is recreated at the stream's beginning: at least once, even then.
        """
        # Once the group existed, it can only be missing again because Redis lost it (a
        # restart without persistence, a flush): everything in the stream then is unseen.
        start = "0" if self._group_seen else self.start_id
        try:
            self.client.xgroup_create(self.stream, self.group, id=start, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            created = False
        else:
            created = True
            if self._group_seen:
                log.warning("consumer group %s on %s was gone; recreated", self.group, self.stream)
        self._group_ready = self._group_seen = True
        return created

    # ------------------------------------------------------------------ reading

    def poll(self, handler: Handler) -> int:
        """One round: claim, read (blocking at most `block_seconds`), handle, ack.

        Returns how many events the handler received.
        """
        if not self._group_ready:
            self.ensure_group()
        try:
            return self._round(handler)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The stream or the group was deleted under us: start again from its beginning.
            self.ensure_group()
            self._own_pending_from = "0-0"
            self._claim_cursor = "0-0"
            return 0

    def run(
        self,
        handler: Handler,
        *,
        stop: threading.Event | None = None,
        max_events: int | None = None,
        retry_seconds: float = 1.0,
    ) -> int:
        """Handle events until `stop` is set or at least `max_events` were handled.

        Redis connection errors are waited out (every `retry_seconds`, up to 30 s apart);
        exceptions from the handler propagate (that entry stays pending). Returns how
        many events the handler received.
        """
        handled = 0
        delay = retry_seconds
        while not (stop is not None and stop.is_set()):
            if max_events is not None and handled >= max_events:
                break
            try:
                handled += self.poll(handler)
                delay = retry_seconds
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("redis unavailable (%s); retrying in %.1fs", exc, delay)
                # A reply lost in flight left entries pending for us: read those again.
                self._own_pending_from = "0-0"
                self._group_ready = False
                if stop is not None:
                    stop.wait(delay)
                else:
                    time.sleep(delay)
                delay = min(delay * 2, 30.0)
        return handled

    def _round(self, handler: Handler) -> int:
        handled = 0
        if self.clock() >= self._next_claim:
            handled += self._claim(handler)
        if self._own_pending_from is not None:
            reply = self.client.xreadgroup(
                self.group,
                self.consumer,
                {self.stream: self._own_pending_from},
                count=self.count,
            )
            entries = _entries(reply)
            if entries:
                self._own_pending_from = entries[-1][0]
                return handled + self._deliver(entries, handler)
            self._own_pending_from = None  # caught up: new entries from now on
        reply = self.client.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=self.count, block=self.block_ms
        )
        return handled + self._deliver(_entries(reply), handler)

    def _claim(self, handler: Handler) -> int:
        """Take over entries idle in other consumers' pending lists (one page)."""
        reply = cast(
            list[Any],
            self.client.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                min_idle_time=self.claim_idle_ms,
                start_id=self._claim_cursor,
                count=self.count,
            ),
        )
        cursor = _text(reply[0])
        # Redis 7 lists the ids of pending entries it found deleted (and dropped them).
        claimed = [(_text(entry_id), fields) for entry_id, fields in reply[1] if entry_id]
        if cursor == "0-0":
            self._next_claim = self.clock() + self.claim_interval  # a full pass: rest
        self._claim_cursor = cursor
        if claimed:
            log.info("claimed %d idle entries for %s", len(claimed), self.consumer)
        return self._deliver(claimed, handler)

    def _deliver(
        self, entries: list[tuple[str, Mapping[Any, Any] | None]], handler: Handler
    ) -> int:
        handled = 0
        for entry_id, fields in entries:
            event = self.gate.admit(raw_of_entry(fields))
            if event is not None and event["event_id"] not in self._recent:
                handler(StreamEvent(entry_id, event))  # raises: stays pending
                self._recent.add(event["event_id"])
                handled += 1
            # Handled, a repeat, deleted, dropped (unsigned, forged) or not an event of ours:
            # done with it.
            self.client.xack(self.stream, self.group, entry_id)
        return handled


# --------------------------------------------------------------------------- background


class BackgroundSubscriber:
    """Collects a channel's events on a daemon thread (the demo and the end-to-end tests).

    The constructor returns once the subscription is live, so nothing published
    afterwards is missed.
    """

    def __init__(
        self,
        redis_url: str,
        channel: str,
        *,
        ready_timeout: float = 10.0,
        verifier: EventVerifier | None = None,
        verify: bool = True,
    ) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.gate = EventGate(verifier, verify=verify)
        self._stopping = threading.Event()
        ready = threading.Event()

        def run() -> None:
            client = redis.Redis.from_url(redis_url)
            for event in iter_events(
                client, channel, poll_timeout=0.2, yield_idle=True, gate=self.gate
            ):
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
