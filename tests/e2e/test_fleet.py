"""End to end: real Celery worker and beat processes, real redis-server, fake providers over
HTTP, on SQLite and on PostgreSQL. Verifications of all four providers must reach their
terminal states with exactly one event per committed transition, even when a worker is
killed mid-run."""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from itertools import pairwise

import pytest
from sqlalchemy import select

from devkit.demo import DEMO_TUNING
from devkit.demo_scenarios import demo_scenarios
from devkit.fake_providers import bank131 as bank131_fake
from devkit.fake_providers import gu1 as gu1_fake
from devkit.fake_providers import notus as notus_fake
from devkit.fake_providers import predicate as predicate_fake
from devkit.local_fleet import database_summary, start_scheduler, start_worker, track
from models import Transition
from models.db import Database
from worker.api.events import BackgroundSubscriber
from worker.domain.events import REVERIFICATION_DUE, STATUS_CHANGED
from worker.domain.statuses import TERMINAL_STATUSES
from worker.entrypoints.migrate import upgrade

pytestmark = pytest.mark.e2e
CHANNEL_PREFIX = "e2e.kyc.events."


@pytest.fixture
def fleet_env(request, tmp_path, fake_providers, redis_url):
    backend = request.param
    database_url = (
        f"sqlite:///{tmp_path / 'kyc.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    upgrade(database_url)
    channel = CHANNEL_PREFIX + uuid.uuid4().hex
    env = {
        **os.environ,
        **DEMO_TUNING,
        **fake_providers.provider_env(),
        "KYC_DATABASE_URL": database_url,
        "KYC_REDIS_URL": redis_url,
        "KYC_EVENTS_CHANNEL": channel,
        "KYC_LOG_FORMAT": "json",
    }
    return env


def wait_until_done(env, expected, collector, processes, timeout=120.0, notices=0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in processes:
            assert proc.running, f"{proc.name} died:\n{proc.log_tail()}"
        statuses, transitions, unpublished = database_summary(env["KYC_DATABASE_URL"])
        done = set(statuses) == set(expected) and all(
            s in TERMINAL_STATUSES for s in statuses.values()
        )
        if done and unpublished == 0 and len(collector.received()) >= transitions + notices:
            time.sleep(1.0)  # anything late would be a duplicate: give it a chance to show
            return statuses
        time.sleep(0.3)
    logs = "\n".join(p.log_tail() for p in processes)
    pytest.fail(f"not done in {timeout}s: {database_summary(env['KYC_DATABASE_URL'])}\n{logs}")


def assert_one_event_per_transition(env, collector):
    database = Database(env["KYC_DATABASE_URL"])
    try:
        with database.session() as session:
            transitions = session.scalars(select(Transition).order_by(Transition.id)).all()
    finally:
        database.dispose()
    received = collector.received()
    ids = Counter(e["event_id"] for e in received)
    assert all(n == 1 for n in ids.values()), "an event was delivered twice"
    events = [e for e in received if e["event_type"] == STATUS_CHANGED]
    assert sorted((e["verification_id"], e["verification_version"]) for e in events) == sorted(
        (t.verification_id, t.version) for t in transitions
    )
    # Each verification's history is a chain: every change starts where the last ended.
    by_verification: dict[int, list[Transition]] = {}
    for transition in transitions:
        by_verification.setdefault(transition.verification_id, []).append(transition)
    for chain in by_verification.values():
        assert chain[0].from_status == "pending"
        for before, after in pairwise(chain):
            assert after.from_status == before.to_status
            assert after.from_status != after.to_status


@pytest.mark.parametrize("fleet_env", ["sqlite", "postgres"], indirect=True)
def test_fleet_drives_every_provider_to_a_final_decision(fleet_env, fake_providers, tmp_path):
    env = fleet_env
    scenarios = demo_scenarios(f"{uuid.uuid4().int % 10**8:08d}")
    for s in scenarios:
        fake_providers.add_session(s.provider, s.external_id, s.script, s.verification_type)
    collector = BackgroundSubscriber(env["KYC_REDIS_URL"], env["KYC_EVENTS_CHANNEL"])
    worker = start_worker(env, tmp_path, concurrency=2)
    scheduler = start_scheduler(env, tmp_path)
    try:
        for s in scenarios:
            if s.tracked_by_app:
                track(env["KYC_REDIS_URL"], s.provider, s.external_id, s.verification_type)
        # Tracking twice changes nothing.
        first = scenarios[0]
        track(env["KYC_REDIS_URL"], first.provider, first.external_id)
        expected = {(s.provider, s.external_id): s.expected for s in scenarios}
        due = sorted((s.provider, s.external_id) for s in scenarios if s.reverification_due)
        statuses = wait_until_done(env, expected, collector, [worker, *scheduler], notices=len(due))
    finally:
        collector.stop()
        for process in (*scheduler, worker):
            process.stop()
    assert statuses == expected
    assert_one_event_per_transition(env, collector)
    assert {e["provider"] for e in collector.received()} == {"notus", "bank131", "gu1", "predicate"}
    notices = [e for e in collector.received() if e["event_type"] == REVERIFICATION_DUE]
    assert sorted((e["provider"], e["external_id"]) for e in notices) == due
    assert_no_personal_data_in_logs(tmp_path)


def assert_no_personal_data_in_logs(log_dir):
    """Every payload the fakes sent carries personal values; none may reach a log line."""
    canaries = [
        *notus_fake.PERSONAL_VALUES,
        *gu1_fake.PERSONAL_VALUES,
        *predicate_fake.PERSONAL_VALUES,
        *bank131_fake.PERSONAL_VALUES,
    ]
    logs = list(log_dir.glob("*.log"))
    assert logs
    for log in logs:
        text = log.read_text(errors="replace")
        for canary in canaries:
            assert canary not in text, f"{canary!r} in {log.name}"


@pytest.mark.parametrize("fleet_env", ["sqlite", "postgres"], indirect=True)
def test_a_killed_worker_loses_nothing_and_duplicates_nothing(fleet_env, fake_providers, tmp_path):
    env = {**fleet_env, "KYC_CLAIM_LEASE_SECONDS": "3"}
    run = f"{uuid.uuid4().int % 10**8:08d}"
    scenarios = []
    for n in range(12):
        provider = ("notus", "gu1")[n % 2]
        external_id = f"crash-{run}-{n}"
        script = (
            ["PENDING", {"fault": "timeout", "delay": 0.8}, "IN_REVIEW", "APPROVED"]
            if provider == "notus"
            else ["pending", {"fault": "timeout", "delay": 0.8}, "in_review", "approved"]
        )
        fake_providers.add_session(provider, external_id, script)
        scenarios.append((provider, external_id))
    collector = BackgroundSubscriber(env["KYC_REDIS_URL"], env["KYC_EVENTS_CHANNEL"])
    doomed = start_worker(env, tmp_path, concurrency=2, name="doomed")
    scheduler = start_scheduler(env, tmp_path)
    survivor = None
    try:
        for provider, external_id in scenarios:
            track(env["KYC_REDIS_URL"], provider, external_id)
        # Let the doomed worker get into the middle of things, then kill it outright.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(collector.received()) < 4:
            time.sleep(0.1)
        assert collector.received(), doomed.log_tail()
        doomed.kill()
        survivor = start_worker(env, tmp_path, concurrency=2, name="survivor")
        expected = {key: "approved" for key in scenarios}
        statuses = wait_until_done(env, expected, collector, [survivor, *scheduler])
    finally:
        collector.stop()
        for process in scheduler:
            process.stop()
        doomed.kill()
        if survivor is not None:
            survivor.stop()
    assert statuses == expected
    assert_one_event_per_transition(env, collector)
