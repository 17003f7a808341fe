"""Poll now, with real processes: under the default schedule (a minute between polls of a
pending session) a nudge gets the decision's event out within seconds."""

from __future__ import annotations

import os
import time
import uuid

import pytest
from celery import Celery

from devkit.local_fleet import database_summary, start_scheduler, start_worker, track
from worker.api.events import BackgroundSubscriber
from worker.entrypoints.migrate import upgrade

pytestmark = pytest.mark.e2e


def test_a_nudge_gets_the_event_out_within_seconds(tmp_path, fake_providers, redis_url):
    database_url = f"sqlite:///{tmp_path / 'kyc.db'}"
    upgrade(database_url)
    channel = "e2e.nudge." + uuid.uuid4().hex
    env = {
        **os.environ,
        **fake_providers.provider_env(),
        "KYC_DATABASE_URL": database_url,
        "KYC_REDIS_URL": redis_url,
        "KYC_EVENTS_CHANNEL": channel,
        "KYC_SCHEDULE_INTERVAL": "0.5",
        "KYC_LOG_FORMAT": "json",
    }
    session = f"nudge-{uuid.uuid4().hex[:8]}"
    fake_providers.add_session("notus", session, ["PENDING", "COMPLETED"])
    collector = BackgroundSubscriber(redis_url, channel)
    worker = start_worker(env, tmp_path, concurrency=2)
    scheduler = start_scheduler(env, tmp_path)
    app = Celery(broker=redis_url, backend=redis_url, set_as_current=False)
    try:
        track(redis_url, "notus", session)
        deadline = time.monotonic() + 60
        while fake_providers.request_count("notus", session) < 1:
            assert time.monotonic() < deadline, worker.log_tail()
            time.sleep(0.1)
        time.sleep(1.0)  # polled once: pending, next poll in about a minute
        nudged = time.monotonic()
        answer = app.send_task("kyc.poll_now", ("notus", session)).get(timeout=30)
        assert answer["outcome"] == "scheduled"
        while not any(e["to_status"] == "approved" for e in collector.received()):
            assert time.monotonic() - nudged < 30, worker.log_tail()
            time.sleep(0.05)
        delay = time.monotonic() - nudged
        again = app.send_task("kyc.poll_now", ("notus", session)).get(timeout=30)
    finally:
        app.close()
        collector.stop()
        for process in (*scheduler, worker):
            process.stop()
    print(f"\npoll-now: event out {delay:.2f} s after the nudge")
    assert delay < 15  # the goal is 5 s; the figure is printed, the bound kept loose
    assert again["outcome"] == "terminal"
    statuses, _, _ = database_summary(database_url)
    assert statuses == {("notus", session): "approved"}
