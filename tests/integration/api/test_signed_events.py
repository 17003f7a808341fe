"""Forged and unsigned events are dropped by every reader and counted; rotation accepts the old
key and the new one at once. Real Redis, real relays (signing as the workers do)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import redis

from tests.support.outbox_events import add_events, make_relay
from worker.api.events import BackgroundSubscriber, EventGate, GroupConsumer, iter_events, replay
from worker.domain.events import STREAM_FIELD_EVENT
from worker.domain.signatures import EventSigner, EventVerifier, generate_key_pair

STREAM = "test.kyc.stream"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def keys():
    old, new = generate_key_pair("2026-11"), generate_key_pair("2026-12")
    return {
        "old": EventSigner.from_text(old.private_key, old.key_id),
        "new": EventSigner.from_text(new.private_key, new.key_id),
        "both": EventVerifier.from_text(f"{old.ring_entry},{new.ring_entry}"),
        "only_new": EventVerifier.from_text(new.ring_entry),
        "pairs": (old, new),
    }


def hostile_messages(real: dict) -> dict[str, str]:
    """Things someone with write access to Redis could add, from one real signed event."""
    unsigned = {k: v for k, v in real.items() if k not in ("signature", "signing_key_id")}
    altered = {**real, "to_status": "approved", "event_id": "altered"}
    stranger = generate_key_pair(real["signing_key_id"])  # the same key id, another key
    impostor = EventSigner.from_text(stranger.private_key, stranger.key_id)
    return {
        "unsigned": json.dumps({**unsigned, "event_id": "unsigned"}),
        "altered": json.dumps(altered),
        "impostor": json.dumps(impostor.sign({**unsigned, "event_id": "impostor"})),
        "unknown_key": json.dumps(
            EventSigner.from_text(generate_key_pair("x").private_key, "x").sign(
                {**unsigned, "event_id": "unknown-key"}
            )
        ),
    }


EXPECTED_DROPS = {"unsigned": 1, "bad_signature": 2, "unknown_key": 1}


def stream_with_rotation(db, url, keys):
    """Two events signed with the old key, two with the new, then the hostile ones."""
    ids = add_events(db, verifications=2, per_verification=1, prefix="old")
    make_relay(db, url, signer=keys["old"]).relay_all()
    ids += add_events(db, verifications=2, per_verification=1, prefix="new")
    make_relay(db, url, signer=keys["new"]).relay_all()
    client = redis.Redis.from_url(url)
    real = json.loads(client.xrange(STREAM)[-1][1][STREAM_FIELD_EVENT.encode()])
    for message in hostile_messages(real).values():
        client.xadd(STREAM, {STREAM_FIELD_EVENT: message})
    return ids


def test_replay_drops_forgeries_and_accepts_old_and_new_keys(sqlite_db, redis_url, keys):
    ids = stream_with_rotation(sqlite_db, redis_url, keys)
    gate = EventGate(keys["both"])
    client = redis.Redis.from_url(redis_url)
    got = [
        item.event["event_id"]
        for item in replay(client, STREAM, from_id="0", follow=False, gate=gate)
    ]
    assert got == ids
    assert gate.dropped == EXPECTED_DROPS
    # A reader that already dropped the old key keeps only the new key's events.
    newer = EventGate(keys["only_new"])
    kept = list(replay(client, STREAM, from_id="0", follow=False, gate=newer))
    assert [item.event["event_id"] for item in kept] == ids[2:]
    assert newer.dropped["unknown_key"] == 3


def test_a_consumer_group_acks_and_drops_forgeries(sqlite_db, redis_url, keys):
    ids = stream_with_rotation(sqlite_db, redis_url, keys)
    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    reader = GroupConsumer(
        client, STREAM, "signed", "c1", start_id="0", block_seconds=0.1, verifier=keys["both"]
    )
    handled = []
    for _ in range(5):
        reader.poll(lambda item: handled.append(item.event["event_id"]))
    assert handled == ids
    assert reader.gate.dropped == EXPECTED_DROPS
    # Dropped entries are acknowledged (done with), not left pending for redelivery.
    assert client.xpending(STREAM, "signed")["pending"] == 0


def test_pub_sub_readers_drop_forgeries(redis_url, keys):
    client = redis.Redis.from_url(redis_url)
    channel = "signed.test.channel"
    gate = EventGate(keys["both"])
    events = iter_events(client, channel, poll_timeout=0.1, yield_idle=True, gate=gate)
    assert next(events) is None
    collector = BackgroundSubscriber(redis_url, channel, verifier=keys["both"])
    real = keys["new"].sign(
        {
            "event_id": "real",
            "event_type": "verification.status_changed",
            "schema_version": 1,
            "verification_id": 1,
            "to_status": "approved",
        }
    )
    for message in [*hostile_messages(real).values(), json.dumps(real)]:
        client.publish(channel, message)
    got = []
    for event in events:
        if event is not None:
            got.append(event["event_id"])
        elif got:
            break  # idle after the real one: everything published has been read
    threading.Event().wait(0.5)  # the collector's thread reads the same messages
    collector.stop()
    assert got == ["real"]
    assert gate.dropped == EXPECTED_DROPS
    assert [e["event_id"] for e in collector.received()] == ["real"]
    assert collector.gate.dropped == EXPECTED_DROPS


def test_readers_refuse_to_start_without_keys_unless_told(monkeypatch, redis_url):
    monkeypatch.delenv("KYC_EVENT_VERIFY_KEYS", raising=False)
    monkeypatch.delenv("KYC_EVENT_SIGNING_KEY", raising=False)
    monkeypatch.delenv("KYC_EVENT_SIGNING_KEY_ID", raising=False)
    client = redis.Redis.from_url(redis_url)
    with pytest.raises(ValueError, match="verify=False"):
        GroupConsumer(client, STREAM, "g", "c")
    with pytest.raises(ValueError, match="KYC_EVENT_VERIFY_KEYS"):
        next(replay(client, STREAM, from_id="0", follow=False))
    unchecked = GroupConsumer(client, STREAM, "g", "c", verify=False)
    assert unchecked.gate.verifier is None


def test_kyc_events_drops_forgeries_and_says_so(sqlite_db, redis_url, keys):
    ids = stream_with_rotation(sqlite_db, redis_url, keys)
    old, new = keys["pairs"]
    env = {
        "PATH": "/usr/bin:/bin",
        "KYC_EVENT_VERIFY_KEYS": f"{old.ring_entry},{new.ring_entry}",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "worker.subscriber",
            "--redis-url",
            redis_url,
            "--stream",
            STREAM,
            "--from-id",
            "0",
            "--no-follow",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["event_id"] for line in lines] == ids
    assert "bad_signature 2" in done.stderr and "unsigned 1" in done.stderr
