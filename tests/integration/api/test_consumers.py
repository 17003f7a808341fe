"""Reading the events stream: consumer groups (at least once), replay, dedupe, recovery."""

import json
import threading
import time
from datetime import UTC, datetime

import pytest
import redis

from tests.support.outbox_events import add_events, make_relay, wait_until
from worker.api.events import GroupConsumer, replay

STREAM = "test.kyc.stream"


class Crash(Exception):
    """Plays a consumer process dying in the middle of a batch."""


def client_for(url):
    return redis.Redis.from_url(url, socket_timeout=10)


def consumer(url, name, **kwargs):
    kwargs.setdefault("block_seconds", 0.1)
    return GroupConsumer(client_for(url), STREAM, "app", name, **kwargs)


def drain(group_consumer, handler, rounds=5):
    """Poll until `rounds` rounds in a row brought nothing."""
    idle = 0
    while idle < rounds:
        idle = 0 if group_consumer.poll(handler) else idle + 1


def pending_count(url, group="app"):
    return client_for(url).xpending(STREAM, group)["pending"]


def test_a_consumer_that_was_down_catches_up_on_every_event(db, redis_url):
    relay = make_relay(db, redis_url, batch_size=100)
    first = consumer(redis_url, "c1")
    assert first.ensure_group() is True  # starts at "$": what is published from now on
    seen: list[str] = []
    before = add_events(db, verifications=3, per_verification=1, prefix="a")
    relay.relay_all()
    drain(first, lambda item: seen.append(item.event["event_id"]))
    assert seen == before

    # c1 goes away; meanwhile 600 events are published over several relay runs
    # (with a pub/sub subscriber away that long, all of them would be lost).
    missed = []
    for run in range(3):
        missed += add_events(db, verifications=100, per_verification=2, prefix=f"b{run}-")
        assert relay.relay_all().published == 200

    back = consumer(redis_url, "c1", count=50)  # a new process, the same consumer name
    assert back.ensure_group() is False  # the group kept its position
    caught_up: list[dict] = []
    drain(back, lambda item: caught_up.append(item.event))
    assert [e["event_id"] for e in caught_up] == missed  # every one, once, in order
    assert pending_count(redis_url) == 0
    # Per verification, in version order.
    versions: dict[int, list[int]] = {}
    for event in caught_up:
        versions.setdefault(event["verification_id"], []).append(event["verification_version"])
    assert all(v == sorted(v) for v in versions.values())


def test_a_consumer_killed_mid_batch_has_its_events_claimed_by_another(sqlite_db, redis_url):
    event_ids = add_events(sqlite_db, verifications=5, per_verification=2)
    a = consumer(redis_url, "a", start_id="0", count=10)
    b = consumer(redis_url, "b", claim_idle_seconds=0.5, claim_interval_seconds=0.05)
    a.ensure_group()
    handled_by_a: list[str] = []

    def dies_after_three(item):
        if len(handled_by_a) == 3:
            raise Crash
        handled_by_a.append(item.event["event_id"])

    make_relay(sqlite_db, redis_url).relay_all()
    with pytest.raises(Crash):
        a.poll(dies_after_three)  # took all ten, handled three, acked three, died
    assert handled_by_a == event_ids[:3]
    assert pending_count(redis_url) == 7

    handled_by_b: list[str] = []
    started = time.monotonic()
    assert b.poll(lambda item: handled_by_b.append(item.event["event_id"])) == 0
    assert handled_by_b == []  # not idle long enough yet: a might still be working
    time.sleep(max(0.0, 0.6 - (time.monotonic() - started)))
    drain(b, lambda item: handled_by_b.append(item.event["event_id"]))
    assert handled_by_b == event_ids[3:]  # the rest, in order, none twice
    assert pending_count(redis_url) == 0


def test_a_restarted_consumer_first_takes_its_own_pending_events(sqlite_db, redis_url):
    event_ids = add_events(sqlite_db, verifications=2, per_verification=2)
    make_relay(sqlite_db, redis_url).relay_all()
    first = consumer(redis_url, "a", start_id="0", claim_idle_seconds=3600)
    first.ensure_group()
    with pytest.raises(Crash):
        first.poll(lambda item: (_ for _ in ()).throw(Crash()))
    assert pending_count(redis_url) == 4
    again: list[str] = []
    drain(
        consumer(redis_url, "a", claim_idle_seconds=3600),
        lambda item: again.append(item.event["event_id"]),
    )
    assert again == event_ids  # no idle time to wait: they were its own
    assert pending_count(redis_url) == 0


def test_repeats_junk_and_deleted_entries_are_acknowledged_and_skipped(sqlite_db, redis_url):
    event_ids = add_events(sqlite_db, verifications=1, per_verification=3)
    make_relay(sqlite_db, redis_url).relay_all()
    client = client_for(redis_url)
    entries = client.xrange(STREAM)
    client.xadd(STREAM, dict(entries[0][1]))  # the first event again (e.g. dedupe key expired)
    client.xadd(STREAM, {"event": "not json"})
    client.xadd(STREAM, {"something": "else"})
    # One entry is delivered, then deleted before it is acknowledged.
    doomed = consumer(redis_url, "a", start_id="0", count=1, claim_idle_seconds=3600)
    doomed.ensure_group()
    with pytest.raises(Crash):
        doomed.poll(lambda item: (_ for _ in ()).throw(Crash()))
    client.xdel(STREAM, entries[0][0])
    received: list[str] = []
    drain(
        consumer(redis_url, "a", claim_idle_seconds=3600),
        lambda item: received.append(item.event["event_id"]),
    )
    # The deleted one is gone; its later copy arrives once; junk is skipped.
    assert received == [*event_ids[1:], event_ids[0]]
    assert pending_count(redis_url) == 0
    # A second copy within the memory window is skipped too.
    group_consumer = GroupConsumer(client, STREAM, "again", "b", start_id="0", block_seconds=0.1)
    seen: list[str] = []
    drain(group_consumer, lambda item: seen.append(item.event["event_id"]))
    assert sorted(seen) == sorted(event_ids) and len(seen) == 3


def test_replay_from_an_id_after_an_id_and_since_a_time(sqlite_db, redis_url):
    early = add_events(sqlite_db, verifications=2, per_verification=2, prefix="e")
    relay = make_relay(sqlite_db, redis_url)
    relay.relay_all()
    time.sleep(0.02)
    since = datetime.now(UTC)
    time.sleep(0.02)
    late = add_events(sqlite_db, verifications=2, per_verification=2, prefix="l")
    relay.relay_all()
    client = client_for(redis_url)
    ids = [entry_id.decode() for entry_id, _ in client.xrange(STREAM)]

    def ids_of(**kwargs):
        return [item.event["event_id"] for item in replay(client, STREAM, follow=False, **kwargs)]

    everything = early + late
    assert ids_of(from_id="0") == everything
    assert ids_of(from_id=ids[2]) == everything[2:]  # included
    assert ids_of(after_id=ids[2]) == everything[3:]  # excluded: resume after the last seen
    assert ids_of(from_id=ids[2].split("-")[0]) == [  # a bare millisecond: from its first entry
        e for e, i in zip(everything, ids, strict=True) if i.split("-")[0] >= ids[2].split("-")[0]
    ]
    assert ids_of(since=since) == late
    assert ids_of(since=datetime(2000, 1, 1, tzinfo=UTC)) == everything
    assert ids_of(after_id=ids[-1]) == []
    assert ids_of(from_id="0", count=1) == everything  # paged one entry per read
    items = list(replay(client, STREAM, from_id=ids[1], follow=False))
    assert [item.stream_id for item in items] == ids[1:]
    with pytest.raises(ValueError, match="exactly one"):
        ids_of(from_id="0", since=since)
    with pytest.raises(ValueError, match="time zone"):
        ids_of(since=datetime(2026, 1, 1))


def test_replay_follows_new_events(sqlite_db, redis_url):
    relay = make_relay(sqlite_db, redis_url)
    old = add_events(sqlite_db, verifications=1, per_verification=2, prefix="o")
    relay.relay_all()
    client = client_for(redis_url)
    events = replay(client, STREAM, from_id="0", block_seconds=0.1, yield_idle=True)
    received = []
    for item in events:
        if item is None:
            break
        received.append(item.event["event_id"])
    assert received == old
    new = add_events(sqlite_db, verifications=1, per_verification=2, prefix="n")
    relay.relay_all()
    for item in events:
        if item is None:
            break
        received.append(item.event["event_id"])
    assert received == old + new


def test_a_consumer_waits_out_a_redis_restart(sqlite_db, restartable_redis):
    url = restartable_redis.url
    relay = make_relay(sqlite_db, url)
    group_consumer = GroupConsumer(client_for(url), STREAM, "app", "a", block_seconds=0.1)
    group_consumer.ensure_group()  # at "$": what is published from now on
    received: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=group_consumer.run,
        args=(lambda item: received.append(item.event["event_id"]),),
        kwargs={"stop": stop, "retry_seconds": 0.5},
        daemon=True,
    )
    thread.start()
    first = add_events(sqlite_db, verifications=2, per_verification=1, prefix="f")
    relay.relay_all()
    assert wait_until(lambda: len(received) == 2)
    restartable_redis.stop()
    time.sleep(0.3)
    restartable_redis.start()  # empty: the stream and the group are gone
    # Published before the consumer is back: the group it recreates starts at the
    # stream's beginning, not at "$", so these are not skipped.
    second = add_events(sqlite_db, verifications=2, per_verification=1, prefix="s")
    relay.relay_all()
    assert wait_until(lambda: len(received) == 4)
    stop.set()
    thread.join(timeout=10)
    assert received == first + second


def test_stream_entries_carry_the_event_as_published(sqlite_db, redis_url):
    add_events(sqlite_db, verifications=1, per_verification=1)
    make_relay(sqlite_db, redis_url).relay_all()
    ((entry_id, fields),) = client_for(redis_url).xrange(STREAM)
    event = json.loads(fields[b"event"])
    assert set(fields) == {b"event", b"event_id", b"verification_id"}
    assert fields[b"event_id"].decode() == event["event_id"]
    assert event["schema_version"] == 1
    item = next(replay(client_for(redis_url), STREAM, from_id="0", follow=False))
    assert item.stream_id == entry_id.decode() and item.event == event
