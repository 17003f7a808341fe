import json
import random
import threading
import time

import pytest
import redis
from sqlalchemy import func, select, update

from models import OutboxEvent
from tests.doubles import NO_TRANSPORT, FakeClock, ScriptedAdapter, result, run_coroutine
from tests.support.event_keys import session_signer
from tests.support.outbox_events import add_events, stream_event_ids
from worker.adapters.sql_store import SqlStore
from worker.api.events import EventGate, iter_events
from worker.domain.decisions import PollPolicy
from worker.domain.signatures import EventSigner, generate_key_pair
from worker.services.polling import PollEngine
from worker.services.relay import (
    DEDUPE_KEY_PREFIX,
    RELAY_LOCK_KEY,
    OutboxRelay,
    RelayReport,
    unpublished_count,
)
from worker.services.tracking import insert_verification_if_absent

CHANNEL = "test.kyc.events"


def make_events(db, count_verifications=2):
    """Drive verifications through pending -> in_review -> approved: two events each."""
    clock = FakeClock()
    adapter = ScriptedAdapter("notus", [result("in_review"), result("approved")])
    engine = PollEngine(
        SqlStore(db),
        {"notus": adapter},
        transport=NO_TRANSPORT,
        policy=PollPolicy(),
        runner=run_coroutine,
        clock=clock,
        rng=random.Random(3),
    )
    for n in range(count_verifications):
        with db.session() as session, session.begin():
            vid, _ = insert_verification_if_absent(
                session,
                provider="notus",
                external_id=f"v{n}",
                verification_type=None,
                now=clock(),
            )
        adapter.calls = 0
        assert engine.poll_batch([vid]).transitions == 1
        assert engine.poll_batch([vid]).transitions == 1
    with db.session() as session:
        return [
            row.event_id for row in session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))
        ]


class Collector:
    """Subscribes before the relay runs and collects what arrives."""

    def __init__(self, url):
        self.client = redis.Redis.from_url(url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(CHANNEL)
        self.pubsub.get_message(timeout=1)  # the subscribe confirmation

    def drain(self, wait=0.5):
        messages = []
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=0.05)
            if message:
                messages.append(json.loads(message["data"]))
        return messages


def relay_for(db, url, **kwargs):
    kwargs.setdefault("signer", session_signer())
    return OutboxRelay(
        db, redis.Redis.from_url(url, socket_timeout=2), CHANNEL, dedupe_ttl=3600, **kwargs
    )


def test_relay_publishes_in_order_and_marks_published(db, redis_url):
    event_ids = make_events(db)
    collector = Collector(redis_url)
    report = relay_for(db, redis_url).relay_all()
    assert (report.published, report.already_published, report.pending_error) == (4, 0, None)
    received = collector.drain()
    assert [e["event_id"] for e in received] == event_ids
    assert [e["to_status"] for e in received] == ["in_review", "approved"] * 2
    assert unpublished_count(db) == 0
    assert relay_for(db, redis_url).relay_all().published == 0
    assert collector.drain(0.2) == []


def test_small_batches_drain_the_whole_outbox(db, redis_url):
    event_ids = make_events(db, count_verifications=3)
    collector = Collector(redis_url)
    report = relay_for(db, redis_url, batch_size=2).relay_all()
    assert report.published == 6
    assert [e["event_id"] for e in collector.drain()] == event_ids


def test_redis_down_delays_events_but_never_loses_them(db, restartable_redis):
    event_ids = make_events(db)
    url = restartable_redis.url
    relay = relay_for(db, url)
    restartable_redis.stop()
    report = relay.relay_all()
    assert report.published == 0 and report.pending_error
    assert unpublished_count(db) == 4
    with db.session() as session:
        first = session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).first()
        assert first.publish_attempts == 1 and first.last_error

    restartable_redis.start()
    collector = Collector(url)
    report = relay.relay_all()
    assert report.published == 4 and report.pending_error is None
    assert [e["event_id"] for e in collector.drain()] == event_ids
    assert unpublished_count(db) == 0


def test_a_relay_that_died_before_marking_does_not_publish_twice(db, redis_url):
    event_ids = make_events(db, count_verifications=1)
    collector = Collector(redis_url)
    relay_for(db, redis_url).relay_all()
    # As if the relay crashed after PUBLISH but before its commit.
    with db.session() as session, session.begin():
        session.execute(update(OutboxEvent).values(published_at=None))
    report = relay_for(db, redis_url).relay_all()
    assert (report.published, report.already_published) == (0, 2)
    assert [e["event_id"] for e in collector.drain()] == event_ids
    assert unpublished_count(db) == 0


def test_concurrent_relays_publish_each_event_once(db, redis_url):
    event_ids = make_events(db, count_verifications=5)
    collector = Collector(redis_url)
    threads = [
        threading.Thread(target=relay_for(db, redis_url, batch_size=3).relay_all) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    received = [e["event_id"] for e in collector.drain()]
    assert sorted(received) == sorted(event_ids)
    assert unpublished_count(db) == 0


def test_subscriber_helper_skips_junk_repeats_forgeries_and_counts_them(redis_url):
    client = redis.Redis.from_url(redis_url)
    gate = EventGate()  # the test session's keys, from the environment
    events = iter_events(client, CHANNEL, poll_timeout=0.1, yield_idle=True, gate=gate)
    assert next(events) is None  # subscribed, idle
    good = {
        "event_id": "e1",
        "event_type": "verification.status_changed",
        "schema_version": 1,
        "verification_id": 1,
        "to_status": "approved",
    }
    signer = session_signer()
    forged = {**signer.sign({**good, "event_id": "e3"}), "verification_id": 9}
    stranger = EventSigner.from_text(generate_key_pair("x").private_key, signer.key_id)
    for message in [
        "not json",
        json.dumps({"event_id": "x"}),
        json.dumps(signer.sign(good)),
        json.dumps(signer.sign(good)),
        json.dumps(good),  # unsigned
        json.dumps(forged),  # altered after signing
        json.dumps(stranger.sign({**good, "event_id": "e4"})),  # another key, same id
        json.dumps(signer.sign({**good, "event_id": "e2"})),
    ]:
        client.publish(CHANNEL, message)
    received = []
    for event in events:
        if event is None:
            if len(received) >= 2:
                break
            continue
        received.append(event["event_id"])
    assert received == ["e1", "e2"]
    assert gate.dropped == {"not_an_event": 2, "unsigned": 1, "bad_signature": 2}


# --------------------------------------------------------------------------- the stream

STREAM = "test.kyc.stream"


def stream_relay(db, url, **kwargs):
    return relay_for(db, url, stream=STREAM, **kwargs)


def stream_entries(url):
    client = redis.Redis.from_url(url)
    try:
        return client.xrange(STREAM)
    finally:
        client.close()


def test_each_event_goes_once_to_the_stream_and_once_to_the_channel(db, redis_url):
    event_ids = make_events(db)
    collector = Collector(redis_url)
    assert stream_relay(db, redis_url).relay_all().published == 4
    received = collector.drain()
    entries = stream_entries(redis_url)
    assert [e["event_id"] for e in received] == event_ids
    assert [json.loads(fields[b"event"])["event_id"] for _, fields in entries] == event_ids
    for (_, fields), message in zip(entries, received, strict=True):
        assert json.loads(fields[b"event"]) == message
        assert fields[b"event_id"].decode() == message["event_id"]
        assert int(fields[b"verification_id"]) == message["verification_id"]
    # A relay that died before marking: neither the stream nor the channel repeats.
    with db.session() as session, session.begin():
        session.execute(update(OutboxEvent).values(published_at=None))
    report = stream_relay(db, redis_url).relay_all()
    assert (report.published, report.already_published) == (0, 4)
    assert collector.drain(0.2) == []
    assert len(stream_entries(redis_url)) == 4


def test_a_batch_is_one_round_trip_and_one_update(db, redis_url):
    event_ids = add_events(db, verifications=50, per_verification=4)
    client = redis.Redis.from_url(redis_url)
    relay = stream_relay(db, redis_url, batch_size=500)
    relay._publish_batch.sha = client.script_load(relay._publish_batch.script)

    def calls(command):
        return client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0)

    before = {name: calls(name) for name in ("evalsha", "eval", "publish", "xadd")}
    report = relay.relay_batch()
    assert (report.published, report.pending_error) == (200, None)
    assert calls("evalsha") - before["evalsha"] == 1  # the whole batch in one script call
    assert calls("eval") == before["eval"]
    assert calls("xadd") - before["xadd"] == 200 and calls("publish") - before["publish"] == 200
    assert stream_event_ids(redis_url, STREAM) == event_ids
    assert unpublished_count(db) == 0
    with db.session() as session:
        attempts = set(session.scalars(select(OutboxEvent.publish_attempts)))
    assert attempts == {1}


def test_concurrent_relays_keep_the_outbox_order_in_the_stream(db, redis_url):
    event_ids = add_events(db, verifications=10, per_verification=3)
    threads = [
        threading.Thread(target=stream_relay(db, redis_url, batch_size=4).relay_all)
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # Relays take turns (advisory lock on PostgreSQL, the write lock on SQLite), so the
    # stream is in outbox order: each verification's events in version order.
    assert stream_event_ids(redis_url, STREAM) == event_ids
    assert unpublished_count(db) == 0


def test_a_batch_stops_at_the_first_refused_event_and_resumes_in_order(db, redis_url):
    event_ids = add_events(db, verifications=2, per_verification=3)
    client = redis.Redis.from_url(redis_url)
    # The first two were published before (their dedupe keys exist); then the stream key
    # holds a string, so XADD refuses the third event (WRONGTYPE).
    for event_id in event_ids[:2]:
        client.set(DEDUPE_KEY_PREFIX + event_id, "1")
    client.set(STREAM, "not a stream")
    collector = Collector(redis_url)
    relay = stream_relay(db, redis_url)

    report = relay.relay_all()
    assert (report.published, report.already_published) == (0, 2)
    assert "WRONGTYPE" in report.pending_error
    assert collector.drain(0.2) == []
    assert not client.exists(DEDUPE_KEY_PREFIX + event_ids[2])  # undone with the failed XADD
    with db.session() as session:
        rows = session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
    assert [row.published_at is not None for row in rows] == [True, True] + [False] * 4
    assert rows[2].publish_attempts == 1 and "WRONGTYPE" in rows[2].last_error
    assert [row.publish_attempts for row in rows[3:]] == [0, 0, 0]  # never tried

    client.delete(STREAM)
    report = relay.relay_all()
    assert (report.published, report.already_published, report.pending_error) == (4, 0, None)
    assert [e["event_id"] for e in collector.drain()] == event_ids[2:]
    assert stream_event_ids(redis_url, STREAM) == event_ids[2:]
    assert unpublished_count(db) == 0


def test_redis_down_mid_outbox_resumes_in_order_in_the_stream(db, restartable_redis):
    event_ids = add_events(db, verifications=3, per_verification=2)
    url = restartable_redis.url
    relay = stream_relay(db, url, batch_size=2)
    assert relay.relay_batch().published == 2
    restartable_redis.stop()
    report = relay.relay_all()
    assert report.published == 0 and report.pending_error
    restartable_redis.start()  # no persistence: a new, empty server on the same port
    assert relay.relay_all().published == 4
    assert stream_event_ids(url, STREAM) == event_ids[2:]
    assert unpublished_count(db) == 0


def _small_stream_nodes(url, entries_per_node=10):
    """Approximate trimming removes whole nodes: small nodes make it near exact."""
    client = redis.Redis.from_url(url)
    client.config_set("stream-node-max-entries", entries_per_node)
    client.config_set("stream-node-max-bytes", 0)  # no byte limit: nodes of exactly that many


def test_stream_keeps_about_maxlen_entries(db, restartable_redis):
    url = restartable_redis.url
    _small_stream_nodes(url)
    event_ids = add_events(db, verifications=30, per_verification=10)
    relay = stream_relay(db, url, batch_size=100, stream_maxlen=50)
    assert relay.relay_all().published == 300
    kept = stream_event_ids(url, STREAM)
    assert 50 <= len(kept) <= 60  # MAXLEN ~ 50, nodes of 10
    assert kept == event_ids[-len(kept) :]  # the newest ones, in order


def test_stream_drops_entries_older_than_max_age(db, restartable_redis):
    url = restartable_redis.url
    _small_stream_nodes(url)
    old = add_events(db, verifications=10, per_verification=2, prefix="old")
    relay = stream_relay(db, url, stream_max_age_seconds=1, stream_maxlen=0)
    assert relay.relay_all().published == 20
    time.sleep(1.2)
    new = add_events(db, verifications=10, per_verification=1, prefix="new")
    assert relay.relay_all().published == 10
    assert stream_event_ids(url, STREAM) == new  # trimmed by the batch that added `new`
    time.sleep(1.2)
    # Nothing published for a while: the periodic trim applies the age all the same.
    assert relay.trim_stream() == 10
    assert stream_event_ids(url, STREAM) == []
    assert old  # (written first, published first, trimmed first)


def test_a_relay_does_not_wait_long_behind_a_stuck_one(db, redis_url):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serializes relays with its write lock (busy_timeout)")
    event_ids = add_events(db, verifications=2, per_verification=1)
    with db.engine.connect() as stuck, stuck.begin():
        # Another relay holding the turn (as if its Redis call hung).
        stuck.execute(select(func.pg_advisory_xact_lock(RELAY_LOCK_KEY)))
        started = time.monotonic()
        report = stream_relay(db, redis_url, lock_timeout_seconds=0.2).relay_all()
        assert report == RelayReport(0, 0, None, busy=True)
        assert time.monotonic() - started < 2
    report = stream_relay(db, redis_url).relay_all()
    assert (report.published, report.busy) == (2, False)
    assert stream_event_ids(redis_url, STREAM) == event_ids
