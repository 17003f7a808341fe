"""Beat's own tasks never wait behind polls: with a backlog of slow poll batches on
kyc.polls, the sweep and the relay keep running on the control worker's queue."""

from __future__ import annotations

import os
import re
import time
import uuid

import pytest
import redis

from devkit.demo import DEMO_TUNING
from devkit.fake_providers.server import FakeProviders
from devkit.local_fleet import start_scheduler, start_worker, track
from worker.config import POLL_QUEUE
from worker.entrypoints.migrate import upgrade

pytestmark = pytest.mark.e2e


def test_sweeps_and_relays_run_while_polls_are_backed_up(tmp_path, redis_url):
    database_url = f"sqlite:///{tmp_path / 'kyc.db'}"
    upgrade(database_url)
    with FakeProviders(latency=1.0, server="aio") as slow:
        env = {
            **os.environ,
            **DEMO_TUNING,
            **slow.provider_env(),
            "KYC_DATABASE_URL": database_url,
            "KYC_REDIS_URL": redis_url,
            "KYC_EVENTS_CHANNEL": "e2e.control." + uuid.uuid4().hex,
            "KYC_POLL_BATCH_SIZE": "2",
            "NOTUS_RATE_LIMIT": "0",
            # Slow, not failing: timeouts would open the circuit and drain the backlog.
            "KYC_HTTP_READ_TIMEOUT": "10",
            "KYC_HTTP_DEADLINE": "15",
        }
        run = uuid.uuid4().hex[:8]
        for n in range(300):
            slow.add_session("notus", f"slow-{run}-{n}", ["PENDING"])
        worker = start_worker(env, tmp_path, concurrency=1)
        scheduler = start_scheduler(env, tmp_path)
        client = redis.Redis.from_url(redis_url)
        try:
            for n in range(300):
                track(redis_url, "notus", f"slow-{run}-{n}")
            backlog = 0
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and backlog < 10:
                backlog = int(client.llen(POLL_QUEUE))
                time.sleep(0.2)
            assert backlog >= 10, "no backlog of poll batches built up"
            control = scheduler[1]
            before = control.log_path.read_text(errors="replace")
            time.sleep(6)
            during = control.log_path.read_text(errors="replace")[len(before) :]
            still_backed_up = int(client.llen(POLL_QUEUE))
        finally:
            client.close()
            for process in (*scheduler, worker):
                process.stop()
    sweeps = re.findall(r"kyc\.schedule_due_polls\[[^\]]+\] succeeded", during)
    relays = re.findall(r"kyc\.relay_outbox\[[^\]]+\] succeeded", during)
    # Beat asks every 0.5 s (sweep) and 1 s (relay): they ran on time, behind no poll.
    assert len(sweeps) >= 6 and len(relays) >= 3, during[-2000:]
    assert still_backed_up >= 5
