import json
import random
import threading
import time

import redis
from sqlalchemy import select, update

from models import OutboxEvent
from tests.doubles import FakeClock, ScriptedAdapter, result, run_coroutine
from worker.adapters.sql_store import SqlStore
from worker.domain.decisions import PollPolicy
from worker.services.polling import PollEngine
from worker.services.relay import OutboxRelay, unpublished_count
from worker.services.tracking import insert_verification_if_absent
from worker.subscriber import iter_events

CHANNEL = "test.kyc.events"


def make_events(db, count_verifications=2):
    """Drive verifications through pending -> in_review -> approved: two events each."""
    clock = FakeClock()
    adapter = ScriptedAdapter("notus", [result("in_review"), result("approved")])
    engine = PollEngine(
        SqlStore(db),
        {"notus": adapter},
        transport=None,
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


def test_subscriber_helper_skips_junk_and_repeats(redis_url):
    client = redis.Redis.from_url(redis_url)
    events = iter_events(client, CHANNEL, poll_timeout=0.1, yield_idle=True)
    assert next(events) is None  # subscribed, idle
    good = {
        "event_id": "e1",
        "event_type": "verification.status_changed",
        "schema_version": 1,
        "verification_id": 1,
        "to_status": "approved",
    }
    for message in [
        "not json",
        json.dumps({"event_id": "x"}),
        json.dumps(good),
        json.dumps(good),
        json.dumps({**good, "event_id": "e2"}),
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
