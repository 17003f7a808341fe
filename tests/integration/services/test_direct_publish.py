"""A poll batch publishes its own events right after its commit (no relay turn), and the
invariants still hold: nothing lost, nothing twice, nothing uncommitted, and one
verification's events in the stream in version order, whatever stalls, fails or races.

Every test runs on SQLite and PostgreSQL (the `db` fixture).
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, cast

import pytest
import redis
from sqlalchemy import func, select

from models import OutboxEvent
from tests.doubles import NO_TRANSPORT, FakeClock, result, run_coroutine
from tests.support.outbox_events import make_relay, stream_event_ids
from worker.adapters.sql_store import SqlStore
from worker.domain.decisions import PollPolicy
from worker.domain.outbox import OutboxEntry
from worker.domain.results import PollResult
from worker.services.polling import PollEngine
from worker.services.relay import OutboxRelay, RelayReport, unpublished_count
from worker.services.tracking import insert_verification_if_absent

STREAM = "test.kyc.stream"


class Flipping:
    """A provider whose every verification changes at every poll (pending <-> in_review)."""

    name = "notus"
    default_verification_type = None
    supports_sync = False

    def __init__(self) -> None:
        self.calls: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    async def fetch_status(self, transport, external_id, verification_type) -> PollResult:
        with self._lock:
            self.calls[external_id] += 1
            n = self.calls[external_id]
        return result("in_review" if n % 2 else "pending")


def track(db, count: int, prefix: str = "v") -> list[int]:
    ids = []
    with db.session() as session, session.begin():
        for n in range(count):
            vid, _ = insert_verification_if_absent(
                session,
                provider="notus",
                external_id=f"{prefix}{n}",
                verification_type=None,
                now=FakeClock()(),
            )
            ids.append(vid)
    return ids


def engine_for(db, publisher, adapter=None) -> PollEngine:
    adapters: dict[str, Any] = {"notus": adapter or Flipping()}
    return PollEngine(
        SqlStore(db),
        adapters,
        transport=NO_TRANSPORT,
        policy=PollPolicy(),
        runner=run_coroutine,
        clock=FakeClock(),
        rng=random.Random(7),
        publisher=publisher,
    )


def outbox_order(db) -> list[tuple[str, int, int]]:
    """(event id, verification id, version) of every committed event, in outbox order."""
    with db.session() as session:
        rows = session.execute(
            select(OutboxEvent.event_id, OutboxEvent.verification_id, OutboxEvent.payload).order_by(
                OutboxEvent.id
            )
        ).all()
    return [(e, v, int(p["verification_version"])) for e, v, p in rows]


def stream_versions(url: str) -> list[tuple[str, int, int]]:
    client = redis.Redis.from_url(url)
    try:
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(STREAM))
    finally:
        client.close()
    events = [json.loads(fields[b"event"]) for _, fields in entries]
    return [(e["event_id"], e["verification_id"], e["verification_version"]) for e in events]


def assert_each_once_in_version_order(db, url: str) -> None:
    """The stream holds every committed event once, each verification's in version order."""
    seen = stream_versions(url)
    assert sorted(seen) == sorted(outbox_order(db))
    assert len({event_id for event_id, _, _ in seen}) == len(seen)
    last: dict[int, int] = {}
    for _, vid, version in seen:
        assert version > last.get(vid, 0), f"verification {vid}: {version} after {last[vid]}"
        last[vid] = version


class Stalling:
    """A publisher that stops between its commit and its publish until released."""

    def __init__(self, relay: OutboxRelay) -> None:
        self.relay = relay
        self.waiting = threading.Event()
        self.release = threading.Event()
        self.outcome: RelayReport | None = None

    def publish_committed(self, entries):
        self.waiting.set()
        assert self.release.wait(30)
        self.outcome = self.relay.publish_committed(entries)
        return self.outcome


class NeverMarks:
    """A publisher that dies after Redis took the events and before they were marked."""

    def __init__(self, relay: OutboxRelay) -> None:
        self.relay = relay

    def publish_committed(self, entries):
        self.relay._publish(entries)
        raise ConnectionError("worker lost between publish and mark")


# ------------------------------------------------------------------------------ the path


def test_a_batch_publishes_its_events_itself_and_marks_them(db, redis_url):
    relay = make_relay(db, redis_url)
    ids = track(db, 5)
    report = engine_for(db, relay).poll_batch(ids)
    assert report.transitions == 5
    assert (report.published, report.left_for_relay, report.publish_failed) == (5, 0, False)
    assert stream_event_ids(redis_url) == report.event_ids
    assert unpublished_count(db) == 0
    # Nothing for the ordered relay to do, and nothing published twice.
    assert relay.relay_all() == RelayReport(0, 0, None)
    assert len(stream_event_ids(redis_url)) == 5


def test_events_a_batch_publishes_itself_are_signed_like_the_relays(db, redis_url):
    from tests.support.event_keys import session_key_pair
    from worker.domain.signatures import EventVerifier

    relay = make_relay(db, redis_url)
    report = engine_for(db, relay).poll_batch(track(db, 3))
    assert report.published == 3 and report.left_for_relay == 0
    verifier = EventVerifier.from_text(session_key_pair().ring_entry)
    client = redis.Redis.from_url(redis_url)
    try:
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(STREAM))
    finally:
        client.close()
    assert len(entries) == 3
    for _, fields in entries:
        check, document = verifier.verify_message(fields[b"event"])
        assert check.valid, check.detail
        assert document is not None and document["event_id"] in report.event_ids


def test_without_a_publisher_every_event_is_left_to_the_relay(db, redis_url):
    ids = track(db, 3)
    report = engine_for(db, None).poll_batch(ids)
    assert (report.published, report.left_for_relay) == (0, 3)
    assert unpublished_count(db) == 3 and stream_event_ids(redis_url) == []
    assert make_relay(db, redis_url).relay_all().published == 3
    assert stream_event_ids(redis_url) == report.event_ids


def events_of(db, vid: int) -> list[str]:
    return [event_id for event_id, v, _ in outbox_order(db) if v == vid]


def test_an_event_behind_an_unpublished_one_is_held_for_the_ordered_relay(db, redis_url):
    relay = make_relay(db, redis_url)
    stuck, free = track(db, 2)
    adapter = Flipping()
    engine_for(db, None, adapter).poll_batch([stuck])  # its event stays unpublished
    second = engine_for(db, relay, adapter).poll_batch([stuck, free])
    assert second.transitions == 2
    # `free` had nothing waiting: out at once; `stuck`'s new event waits behind its first.
    assert (second.published, second.left_for_relay) == (1, 1)
    assert stream_event_ids(redis_url) == events_of(db, free)
    assert relay.relay_all().published == 2
    assert stream_event_ids(redis_url) == events_of(db, free) + events_of(db, stuck)
    assert_each_once_in_version_order(db, redis_url)


# ------------------------------------------------------------------------------ failures


@contextlib.contextmanager
def stalled_poll(db, relay: OutboxRelay, adapter: Flipping, vid: int) -> Iterator[Stalling]:
    """A poll of `vid` in a thread, stopped between its commit and its publish until the
    block ends (or a failed assertion in it: the thread is always released)."""
    stalled = Stalling(relay)
    slow = threading.Thread(target=engine_for(db, stalled, adapter).poll_batch, args=([vid],))
    slow.start()
    try:
        assert stalled.waiting.wait(30)  # committed, not published
        yield stalled
    finally:
        stalled.release.set()
        slow.join(30)
    assert not slow.is_alive()


def test_a_publisher_stalled_after_commit_is_overtaken_in_order_and_adds_no_duplicate(
    db, redis_url
):
    relay = make_relay(db, redis_url)
    (vid,) = track(db, 1)
    adapter = Flipping()
    with stalled_poll(db, relay, adapter, vid) as stalled:
        assert unpublished_count(db) == 1
        # The beat relay publishes it meanwhile; the next poll's event then goes out directly.
        assert relay.relay_all().published == 1
        nxt = engine_for(db, relay, adapter).poll_batch([vid])
        assert (nxt.published, nxt.left_for_relay) == (1, 0)
    assert stalled.outcome == RelayReport(0, 1, None)  # Redis had it: a no-op
    assert len(stream_event_ids(redis_url)) == 2
    assert_each_once_in_version_order(db, redis_url)
    assert unpublished_count(db) == 0


def test_a_stalled_publisher_holds_back_the_next_event_of_its_verification(db, redis_url):
    relay = make_relay(db, redis_url)
    (vid,) = track(db, 1)
    adapter = Flipping()
    with stalled_poll(db, relay, adapter, vid) as stalled:
        # No relay ran: the next event must not overtake the stalled one.
        nxt = engine_for(db, relay, adapter).poll_batch([vid])
        assert (nxt.published, nxt.left_for_relay) == (0, 1)
        assert stream_event_ids(redis_url) == []
    assert stalled.outcome == RelayReport(1, 0, None)
    assert relay.relay_all().published == 1
    assert_each_once_in_version_order(db, redis_url)
    assert unpublished_count(db) == 0


def test_a_worker_lost_between_publish_and_mark_publishes_nothing_twice(db, redis_url):
    relay = make_relay(db, redis_url)
    (vid,) = track(db, 1)
    adapter = Flipping()
    lost = engine_for(db, NeverMarks(relay), adapter).poll_batch([vid])
    assert (lost.published, lost.left_for_relay, lost.publish_failed) == (0, 1, True)
    assert len(stream_event_ids(redis_url)) == 1 and unpublished_count(db) == 1
    # Its verification's next event waits (the first is not marked), then both go in order.
    nxt = engine_for(db, relay, adapter).poll_batch([vid])
    assert (nxt.published, nxt.left_for_relay) == (0, 1)
    assert relay.relay_all() == RelayReport(1, 1, None)
    assert len(stream_event_ids(redis_url)) == 2
    assert_each_once_in_version_order(db, redis_url)
    assert unpublished_count(db) == 0


def test_redis_down_after_commit_loses_nothing_and_keeps_the_order(db, restartable_redis):
    url = restartable_redis.url
    relay = make_relay(db, url)
    ids = track(db, 2)
    adapter = Flipping()
    poller = engine_for(db, relay, adapter)
    restartable_redis.stop()
    down = poller.poll_batch(ids)
    assert down.transitions == 2
    assert (down.published, down.left_for_relay, down.publish_failed) == (0, 2, True)
    again = poller.poll_batch(ids)  # still down: held back behind the first ones
    assert (again.published, again.left_for_relay) == (0, 2)
    assert unpublished_count(db) == 4
    restartable_redis.start()
    assert relay.relay_all().published == 4
    assert_each_once_in_version_order(db, url)
    after = poller.poll_batch(ids)  # back to the direct path
    assert (after.published, after.left_for_relay) == (2, 0)
    assert_each_once_in_version_order(db, url)


def test_a_refused_event_stops_the_batch_there_and_the_relay_resumes_in_order(db, redis_url):
    relay = make_relay(db, redis_url)
    ids = track(db, 3)
    client = redis.Redis.from_url(redis_url)
    poller = engine_for(db, relay)
    poller.poll_batch(ids)
    # The stream key now holds a string: XADD refuses the next batch's first event.
    client.delete(STREAM)
    client.set(STREAM, "not a stream")
    refused = poller.poll_batch(ids)
    assert (refused.published, refused.left_for_relay, refused.publish_failed) == (0, 3, True)
    assert unpublished_count(db) == 3
    client.delete(STREAM)
    assert relay.relay_all().published == 3
    assert stream_event_ids(redis_url) == refused.event_ids
    client.close()


@pytest.mark.parametrize("seed", [1, 2])
def test_racing_workers_stalls_failures_and_the_beat_relay_keep_every_invariant(
    db, redis_url, seed
):
    """Four workers poll the same verifications over and over (every poll a change), each
    publish stalling or dying at random, while the beat relay runs all along: every
    committed event reaches the stream once, each verification's in version order."""
    ids = track(db, 6)
    adapter = Flipping()
    stop = threading.Event()
    errors: list[BaseException] = []

    class Flaky:
        def __init__(self, relay: OutboxRelay, rng: random.Random) -> None:
            self.relay = relay
            self.rng = rng

        def publish_committed(self, entries: list[OutboxEntry]):
            roll = self.rng.random()
            if roll < 0.15:
                raise ConnectionError("lost before publishing")
            if roll < 0.3:
                self.relay._publish(entries)
                raise ConnectionError("lost between publish and mark")
            if roll < 0.45:
                threading.Event().wait(self.rng.uniform(0.005, 0.05))  # a slow publisher
            return self.relay.publish_committed(entries)

    def worker(n: int) -> None:
        rng = random.Random(seed * 100 + n)
        poller = engine_for(db, Flaky(make_relay(db, redis_url), rng), adapter)
        try:
            for _ in range(12):
                poller.poll_batch(rng.sample(ids, 3))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def beat() -> None:
        relay = make_relay(db, redis_url, batch_size=4)
        try:
            while not stop.is_set():
                relay.relay_all()
                stop.wait(0.01)
        except BaseException as exc:
            errors.append(exc)

    beat_thread = threading.Thread(target=beat)
    workers = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    beat_thread.start()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(120)
    stop.set()
    beat_thread.join(30)
    assert not errors, errors
    make_relay(db, redis_url).relay_all()
    assert unpublished_count(db) == 0
    with db.session() as session:
        committed = session.scalar(select(func.count()).select_from(OutboxEvent))
    assert committed and committed >= 12  # the race made real work, not all conflicts
    assert_each_once_in_version_order(db, redis_url)


def test_marking_does_not_wait_for_rows_another_relay_holds(db, redis_url):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: there is no row lock to skip")
    relay = make_relay(db, redis_url)
    (vid,) = track(db, 1)
    engine_for(db, None).poll_batch([vid])
    with db.session() as session:
        row = session.scalars(select(OutboxEvent)).one()
        entry = OutboxEntry(row.event_id, vid, row.payload)
    with db.engine.connect() as holder, holder.begin():
        # Another relay claimed the row (FOR UPDATE) and has not committed yet.
        holder.execute(
            select(OutboxEvent.id).where(OutboxEvent.verification_id == vid).with_for_update()
        )
        done: list[RelayReport] = []
        marker = threading.Thread(target=lambda: done.append(relay.publish_committed([entry])))
        marker.start()
        marker.join(30)
        assert not marker.is_alive()  # finished while the row is still held
        assert done == [RelayReport(1, 0, None)]
    # The holder never marked it: it is still unpublished, and the relay's retry is a no-op.
    assert unpublished_count(db) == 1
    assert relay.relay_all() == RelayReport(0, 1, None)
    assert unpublished_count(db) == 0
