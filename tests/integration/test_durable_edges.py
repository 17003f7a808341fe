"""Nothing lost at the app's edge: tracking survives a database that is down and a broker
restart (with the persistence docker-compose.yml configures), the client API reports the
outcome, and database errors never carry stored data into logs."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid

import pytest
from sqlalchemy import text

from devkit.embedded_postgres import PostgresCluster, PostgresServer, find_postgres_bindir
from devkit.embedded_redis import EmbeddedRedis
from devkit.local_fleet import database_summary, start_intake_worker, track
from models.db import Database
from worker.api.client import KycClient
from worker.domain.errors import InvalidExternalIdError, StorageUnavailableError
from worker.entrypoints.migrate import upgrade
from worker.services.storage_errors import StorageError, storage_errors

CANARY = "Zebulon-Quartermaine-1987"


@pytest.fixture
def own_postgres():
    """A cluster of its own: these tests take the database down and bring it back."""
    bindir = find_postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL binaries not found")
    cluster = PostgresCluster(bindir).start()
    server = PostgresServer(cluster.url, cluster=cluster)
    url = server.database_url(server.create_database())
    upgrade(url)
    yield cluster, url
    cluster.stop()


def test_the_client_tracks_synchronously_and_names_refusals(sqlite_url):
    upgrade(sqlite_url)
    with KycClient(sqlite_url) as client:
        first = client.track("predicate", "550E8400-E29B-41D4-A716-446655440000")
        again = client.track("predicate", "550e8400-e29b-41d4-a716-446655440000")
        assert first.created and not again.created
        assert again.verification_id == first.verification_id
        with pytest.raises(InvalidExternalIdError, match=re.escape("'..'")):
            client.track("notus", "../etc/passwd")


def test_the_client_waits_out_a_short_database_outage(own_postgres):
    cluster, url = own_postgres
    with KycClient(url, retry_seconds=30) as client:
        client.track("notus", "warm-up")
        cluster.pause()
        threading.Timer(2.0, cluster.resume).start()
        started = time.monotonic()
        tracked = client.track("notus", "during-outage")
        assert tracked.created and time.monotonic() - started >= 1.5


def test_the_client_gives_up_after_its_retry_bound(own_postgres):
    cluster, url = own_postgres
    naps: list[float] = []
    with KycClient(url, retry_seconds=2, sleep=naps.append) as client:
        client.track("notus", "warm-up")
        cluster.pause()
        try:
            with pytest.raises(StorageUnavailableError):
                client.track("notus", "never")
        finally:
            cluster.resume()
    assert naps and sum(naps) <= 2


def test_database_errors_withhold_what_they_were_given(postgres_url):
    upgrade(postgres_url)
    db = Database(postgres_url)
    try:
        with pytest.raises(StorageError) as info, storage_errors(), db.session() as session:
            session.execute(
                text("SELECT CAST(:doc AS jsonb)"), {"doc": f'{{"n": "{CANARY}\\u0000"}}'}
            )
    finally:
        db.dispose()
    assert CANARY not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_tracking_sent_while_the_database_is_down_is_stored_when_it_is_back(
    own_postgres, redis_url, tmp_path
):
    cluster, url = own_postgres
    env = {**os.environ, "KYC_DATABASE_URL": url, "KYC_REDIS_URL": redis_url}
    worker = start_intake_worker(env, tmp_path)
    run = uuid.uuid4().hex[:8]
    try:
        cluster.pause()
        for n in range(400):
            track(redis_url, "notus", f"down-{run}-{n}")
        time.sleep(8)  # the worker takes them and finds no database
        cluster.resume()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            statuses, _, _ = database_summary(url)
            if len(statuses) == 400:
                break
            assert worker.running, worker.log_tail()
            time.sleep(0.5)
    finally:
        worker.stop()
    assert len(database_summary(url)[0]) == 400
    assert "tracking_retried" in worker.log_path.read_text(errors="replace")


def test_a_broker_restart_with_the_compose_persistence_loses_no_request(sqlite_url, tmp_path):
    upgrade(sqlite_url)
    run = uuid.uuid4().hex[:8]
    with EmbeddedRedis(persistent=True) as broker:
        for n in range(400):
            track(broker.url, "notus", f"restart-{run}-{n}")
        time.sleep(0.5)
        broker.stop(keep_data=True)  # a restart, as `docker compose restart redis` does it
        broker.start()
        env = {**os.environ, "KYC_DATABASE_URL": sqlite_url, "KYC_REDIS_URL": broker.url}
        worker = start_intake_worker(env, tmp_path)
        try:
            deadline = time.monotonic() + 90
            while len(database_summary(sqlite_url)[0]) < 400 and time.monotonic() < deadline:
                assert worker.running, worker.log_tail()
                time.sleep(0.5)
        finally:
            worker.stop()
    assert len(database_summary(sqlite_url)[0]) == 400
