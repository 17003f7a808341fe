"""Predicate status streams against the fake's SSE endpoint: a message is a hint, one stream
per session fleet-wide (a Redis lease), a refused stream backs off and comes back."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from redis import asyncio as aioredis

from models.db import Database
from worker.adapters.registry import build_adapter
from worker.config import Settings
from worker.entrypoints.migrate import upgrade
from worker.services.streams import LEASE_PREFIX, StreamLimits, StreamManager
from worker.services.tracking import track_verification


@pytest.fixture
def database(sqlite_url):
    upgrade(sqlite_url)
    db = Database(sqlite_url)
    yield db
    db.dispose()


@pytest.fixture
def streams(fake_providers):
    fake = fake_providers.app.streams
    saved = (fake.message_delay, fake.heartbeat, fake.duration)
    fake.message_delay, fake.heartbeat, fake.duration = 0.05, 0.05, 0.6
    yield fake
    fake.message_delay, fake.heartbeat, fake.duration = saved


def manager(fake_providers, database, client, offered, events, executor, **limits):
    settings = Settings.from_env(fake_providers.provider_env())
    adapter = build_adapter("predicate", settings.providers["predicate"])
    return StreamManager(
        adapter,
        database,
        client,
        executor,
        lambda provider, ids, source: offered.append((provider, tuple(ids), source)) or True,
        StreamLimits(**{"max_streams": 2, "refresh_seconds": 0.05, **limits}),
        on_event=events.append,
    )


def run(body):
    asyncio.run(body())


def test_a_message_is_a_hint_and_one_process_holds_the_session(
    fake_providers, database, redis_url, streams
):
    session = str(uuid.uuid4())
    fake_providers.add_session("predicate", session, ["pending"])
    track_verification(database, "predicate", session)
    done = track_verification(database, "predicate", str(uuid.uuid4()))  # unknown to the fake
    assert done.created
    offered, events, other_events = [], [], []

    async def body():
        client = aioredis.Redis.from_url(redis_url)
        with ThreadPoolExecutor(2) as executor:
            first = manager(fake_providers, database, client, offered, events, executor)
            second = manager(fake_providers, database, client, [], other_events, executor)
            await first.refresh()
            assert session in first.open
            assert await client.get(f"{LEASE_PREFIX}predicate:{session}") == first.owner.encode()
            await second.refresh()
            assert session not in second.open and "leased_elsewhere" in other_events
            for _ in range(100):
                if offered:
                    break
                await asyncio.sleep(0.02)
            await first.stop()
            await second.stop()
        await client.aclose()

    run(body)
    assert offered[0] == ("predicate", (session,), "stream")
    assert "opened" in events and "message" in events


def test_a_refused_stream_backs_off_then_opens_again(fake_providers, database, redis_url, streams):
    session = str(uuid.uuid4())
    fake_providers.add_session("predicate", session, ["pending"])
    track_verification(database, "predicate", session)
    streams.refuse(session, 1)
    offered, events = [], []

    async def body():
        client = aioredis.Redis.from_url(redis_url)
        with ThreadPoolExecutor(2) as executor:
            streaming = manager(
                fake_providers,
                database,
                client,
                offered,
                events,
                executor,
                backoff_base_seconds=0.2,
            )
            await streaming.refresh()
            await asyncio.sleep(0.1)
            assert "failed" in events and session in streaming.retry_at
            assert await client.get(f"{LEASE_PREFIX}predicate:{session}") is None  # released
            await streaming.refresh()
            assert session not in streaming.open  # still backing off
            await asyncio.sleep(0.25)
            await streaming.refresh()
            assert session in streaming.open
            for _ in range(100):
                if offered:
                    break
                await asyncio.sleep(0.02)
            await streaming.stop()
        await client.aclose()

    run(body)
    assert offered and streams.opened(session) >= 1


def test_sessions_past_their_first_phase_get_no_stream(
    fake_providers, database, redis_url, streams
):
    from models import Verification

    session = str(uuid.uuid4())
    fake_providers.add_session("predicate", session, ["completed"])
    tracked = track_verification(database, "predicate", session)
    with database.session() as db_session, db_session.begin():
        db_session.get(Verification, tracked.verification_id).status = "in_review"
    events = []

    async def body():
        client = aioredis.Redis.from_url(redis_url)
        with ThreadPoolExecutor(2) as executor:
            streaming = manager(fake_providers, database, client, [], events, executor)
            await streaming.refresh()
            assert streaming.open == {}
            await streaming.stop()
        await client.aclose()

    run(body)
