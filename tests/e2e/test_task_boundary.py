"""The task trust boundary with a real worker: the worker serving apps' queue runs apps'
tasks and refuses internal ones placed on its queue, whatever the message claims."""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest
from celery import Celery

from devkit.local_fleet import database_summary, start_intake_worker
from models.db import Database
from worker.domain.queues import LEGACY_DEFAULT_QUEUE, PUBLIC_QUEUE
from worker.entrypoints.migrate import upgrade
from worker.services.tracking import track_verification

pytestmark = pytest.mark.e2e


def refusals(log_text: str) -> list[dict]:
    found = []
    for line in log_text.splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        if record.get("event") == "task_refused":
            found.append(record)
    return found


def test_the_intake_worker_tracks_and_refuses_internal_tasks(tmp_path, redis_url):
    database_url = f"sqlite:///{tmp_path / 'kyc.db'}"
    upgrade(database_url)
    db = Database(database_url)
    target = track_verification(db, "notus", "already-here")
    db.dispose()
    env = {
        **os.environ,
        "KYC_DATABASE_URL": database_url,
        "KYC_REDIS_URL": redis_url,
        "KYC_LOG_FORMAT": "json",
        "KYC_METRICS_PORT": "0",
    }
    intake = start_intake_worker(env, tmp_path)
    app = Celery(broker=redis_url, backend=redis_url, set_as_current=False)
    session = f"boundary-{uuid.uuid4().hex[:8]}"
    try:
        tracked = app.send_task("kyc.track_verification", ("notus", session), queue=PUBLIC_QUEUE)
        assert tracked.get(timeout=60)["created"] is True
        # Internal work smuggled onto apps' queues, with and without a forged routing key.
        for queue in (PUBLIC_QUEUE, LEGACY_DEFAULT_QUEUE):
            app.send_task("kyc.poll_batch", ([target.verification_id],), queue=queue)
        app.send_task("kyc.schedule_due_polls", (), queue=PUBLIC_QUEUE, routing_key="kyc.control")
        deadline = time.monotonic() + 60
        while len(refusals(intake.log_path.read_text(errors="replace"))) < 3:
            assert time.monotonic() < deadline, intake.log_tail()
            assert intake.running, intake.log_tail()
            time.sleep(0.2)
    finally:
        app.close()
        intake.stop()
    refused = refusals(intake.log_path.read_text(errors="replace"))
    assert sorted(r["task"] for r in refused) == [
        "kyc.poll_batch",
        "kyc.poll_batch",
        "kyc.schedule_due_polls",
    ]
    statuses, transitions, _ = database_summary(database_url)
    assert statuses == {("notus", "already-here"): "pending", ("notus", session): "pending"}
    assert transitions == 0  # nothing was polled
    log = intake.log_path.read_text(errors="replace")
    assert "poll_failed" not in log and "polls_enqueued" not in log  # no poll ran
