"""The provider governor with real worker processes: a rate limit the whole fleet keeps, and a
credential mishap that opens the circuit and fails no verification."""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest

from devkit.demo import DEMO_TUNING
from devkit.local_fleet import database_summary, start_scheduler, start_worker, track
from worker.entrypoints.migrate import upgrade

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(tmp_path, fake_providers, redis_url):
    database_url = f"sqlite:///{tmp_path / 'kyc.db'}"
    upgrade(database_url)
    return {
        **os.environ,
        **DEMO_TUNING,
        **fake_providers.provider_env(),
        "KYC_DATABASE_URL": database_url,
        "KYC_REDIS_URL": redis_url,
        "KYC_EVENTS_CHANNEL": "e2e.governor." + uuid.uuid4().hex,
        "KYC_LOG_FORMAT": "json",
    }


def log_events(process) -> list[dict]:
    events = []
    for line in process.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events


def test_two_workers_keep_one_fleet_wide_rate_limit(env, fake_providers, tmp_path):
    rate, burst = 4, 4
    env = {
        **env,
        "NOTUS_RATE_LIMIT": str(rate),
        "NOTUS_RATE_BURST": str(burst),
    }
    run = uuid.uuid4().hex[:8]
    sessions = [f"rate-{run}-{n}" for n in range(40)]
    for session in sessions:
        fake_providers.add_session("notus", session, ["PENDING"])

    def requests_so_far() -> int:
        return sum(fake_providers.request_count("notus", s) for s in sessions)

    workers = [start_worker(env, tmp_path, concurrency=2, name=f"w{n}") for n in (1, 2)]
    scheduler = start_scheduler(env, tmp_path)
    try:
        for session in sessions:
            track(env["KYC_REDIS_URL"], "notus", session)
        deadline = time.monotonic() + 60
        while requests_so_far() < 2 * burst and time.monotonic() < deadline:
            time.sleep(0.1)
        start, at_start = time.monotonic(), requests_so_far()
        time.sleep(8)
        window, in_window = time.monotonic() - start, requests_so_far() - at_start
    finally:
        for process in (*scheduler, *workers):
            process.stop()
    # At most the rate over the window plus one burst, whichever worker made them.
    assert in_window <= rate * window + burst + 1
    # ... and the fleet did keep polling at about that rate.
    assert in_window >= rate * window * 0.5
    busy = [
        w
        for w in workers
        if any(
            e.get("event") == "polls_deferred" or e.get("event") == "poll_unchanged"
            for e in log_events(w)
        )
    ]
    assert len(busy) >= 1
    received = [w for w in workers if "kyc.poll_batch" in w.log_path.read_text(errors="replace")]
    assert len(received) == 2, "both workers took poll batches"


def test_a_credential_mishap_opens_the_circuit_and_fails_nothing(env, fake_providers, tmp_path):
    env = {
        **env,
        # If refused credentials counted against rows, one 401 would fail each of them.
        "KYC_MAX_PERMANENT_ERRORS": "1",
        "KYC_BREAKER_MIN_FAULTS": "3",
        "KYC_BREAKER_COOLDOWN_SECONDS": "1",
        "KYC_BREAKER_MAX_COOLDOWN_SECONDS": "2",
        "NOTUS_RATE_LIMIT": "0",
    }
    run = uuid.uuid4().hex[:8]
    sessions = [f"auth-{run}-{n}" for n in range(30)]
    refused = {"fault": "http_error", "http_status": 401}
    for session in sessions:
        fake_providers.add_session("notus", session, [refused, "COMPLETED"])
    worker = start_worker(env, tmp_path, concurrency=2)
    scheduler = start_scheduler(env, tmp_path)
    try:
        for session in sessions:
            track(env["KYC_REDIS_URL"], "notus", session)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            statuses, _, _ = database_summary(env["KYC_DATABASE_URL"])
            if len(statuses) == len(sessions) and set(statuses.values()) == {"approved"}:
                break
            assert worker.running, worker.log_tail()
            time.sleep(0.3)
    finally:
        for process in (*scheduler, worker):
            process.stop()
    statuses, _, _ = database_summary(env["KYC_DATABASE_URL"])
    assert sorted(statuses.values()) == ["approved"] * len(sessions)
    events = [e.get("event") for e in log_events(worker)]
    assert "circuit_opened" in events and "circuit_closed" in events
    assert events.index("circuit_opened") < events.index("circuit_closed")
    # While it was open nothing was called: each session saw its 401 and then its answer.
    assert [fake_providers.request_count("notus", s) for s in sessions] == [2] * len(sessions)
