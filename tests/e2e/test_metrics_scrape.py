"""Metrics with real processes: a prefork poll worker, the control worker and beat each serve
/metrics on their own port; while they drive verifications to a decision the counters move,
and the numbers agree with the database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from devkit.demo import DEMO_TUNING
from devkit.embedded_redis import free_port
from devkit.local_fleet import (
    ChildProcess,
    database_summary,
    start_beat,
    start_control_worker,
    start_intake_worker,
    start_worker,
    track,
)
from worker.domain.statuses import TERMINAL_STATUSES
from worker.entrypoints.migrate import upgrade

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include `labels`."""
    return sum(
        v
        for (sample, sample_labels), v in samples.items()
        if sample == name and set(labels.items()) <= set(sample_labels)
    )


def eventually(check: Callable[[], bool], processes: list[ChildProcess], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        for process in processes:
            assert process.running, f"{process.name} died:\n{process.log_tail()}"
        if time.monotonic() > deadline:
            logs = "\n".join(p.log_tail() for p in processes)
            pytest.fail(f"not within {timeout}s\n{logs}")
        time.sleep(0.3)


def test_worker_control_and_beat_serve_metrics_that_move(tmp_path, fake_providers, redis_url):
    database_url = f"sqlite:///{tmp_path / 'kyc.db'}"
    upgrade(database_url)
    metrics_dir = tmp_path / "metrics"
    env = {
        **os.environ,
        **DEMO_TUNING,
        **fake_providers.provider_env(),
        "KYC_DATABASE_URL": database_url,
        "KYC_REDIS_URL": redis_url,
        "KYC_EVENTS_CHANNEL": "e2e.metrics." + uuid.uuid4().hex,
        "KYC_LOG_FORMAT": "json",
        "KYC_METRICS_ADDR": "127.0.0.1",
        "KYC_METRICS_DIR": str(metrics_dir),
        "KYC_METRICS_CACHE_SECONDS": "0.5",
    }
    run = uuid.uuid4().hex[:8]
    sessions = [
        *(("notus", f"m-{run}-{n}", ["PENDING", "IN_REVIEW", "APPROVED"]) for n in range(3)),
        *(("predicate", str(uuid.uuid4()), ["pending", "submitted", "completed"]) for _ in "ab"),
        (
            "gu1",
            f"m-{run}-gu1",
            ["pending", {"fault": "http_error", "http_status": 500}, "approved"],
        ),
    ]
    for provider, session, script in sessions:
        fake_providers.add_session(provider, session, script)
    ports = {name: free_port() for name in ("worker", "control", "intake", "beat")}
    worker = start_worker(
        {**env, "KYC_METRICS_PORT": str(ports["worker"])}, tmp_path, concurrency=2
    )
    control = start_control_worker({**env, "KYC_METRICS_PORT": str(ports["control"])}, tmp_path)
    intake = start_intake_worker({**env, "KYC_METRICS_PORT": str(ports["intake"])}, tmp_path)
    beat = start_beat({**env, "KYC_METRICS_PORT": str(ports["beat"])}, tmp_path)
    processes = [worker, control, intake, beat]
    try:
        for provider, session, _ in sessions:
            track(redis_url, provider, session)
        track(redis_url, "notus", "not a valid id!")  # rejected

        def all_decided() -> bool:
            statuses, _, unpublished = database_summary(database_url)
            done = len(statuses) == len(sessions) and unpublished == 0
            return done and all(s in TERMINAL_STATUSES for s in statuses.values())

        eventually(all_decided, processes, timeout=90)
        statuses, transitions, _ = database_summary(database_url)
        assert set(statuses.values()) == {"approved"}

        # Poll worker: its prefork children counted, its main process serves the sum.
        def worker_caught_up() -> bool:
            published = total(scrape(ports["worker"]), "kyc_poller_events_published_total")
            published += total(scrape(ports["control"]), "kyc_poller_events_published_total")
            return published >= transitions

        eventually(worker_caught_up, processes, timeout=20)
        polled = scrape(ports["worker"])
        assert total(polled, "kyc_poller_polls_total", outcome="transition") == transitions
        approved = value(
            polled,
            "kyc_poller_transitions_total",
            provider="notus",
            to_status="approved",
            reason="provider",
        )
        assert approved == 3
        assert total(polled, "kyc_poller_polls_total", outcome="unchanged") >= 1
        notus_calls = "kyc_poller_provider_call_duration_seconds_count"
        assert value(polled, notus_calls, provider="notus") >= 9
        bucket = "kyc_poller_provider_call_duration_seconds_bucket"
        assert value(polled, bucket, provider="notus", le="+Inf") >= 9
        server_errors = value(
            polled, "kyc_poller_provider_calls_total", provider="gu1", result="server_error"
        )
        assert server_errors >= 1
        # The intake worker: apps' tracking requests.
        intake_metrics = scrape(ports["intake"])
        tracking = "kyc_poller_tracking_requests_total"
        assert value(intake_metrics, tracking, provider="notus", result="created") == 3
        assert value(intake_metrics, tracking, provider="notus", result="rejected") == 1
        assert total(polled, tracking) == 0  # poll workers no longer take apps' requests
        # Predicate says when it decided (completedAt): a real detection delay.
        delays = value(polled, "kyc_poller_detection_delay_seconds_count", provider="predicate")
        assert delays == 2
        published = total(polled, "kyc_poller_events_published_total") + total(
            scrape(ports["control"]), "kyc_poller_events_published_total"
        )
        assert published == transitions

        # Beat: the fleet as the database and the governor see it.
        def beat_caught_up() -> bool:
            fleet = scrape(ports["beat"])
            latency = value(fleet, "kyc_poller_event_publish_latency_seconds_count") or 0
            return latency >= transitions

        eventually(beat_caught_up, processes, timeout=20)
        fleet = scrape(ports["beat"])
        by_status = "kyc_poller_verifications"
        assert value(fleet, by_status, provider="notus", status="approved") == 3
        assert value(fleet, by_status, provider="predicate", status="approved") == 2
        assert value(fleet, by_status, provider="gu1", status="approved") == 1
        assert value(fleet, by_status, provider="notus", status="pending") == 0
        assert total(fleet, "kyc_poller_due_verifications") == 0
        assert value(fleet, "kyc_poller_outbox_unpublished_events") == 0
        assert value(fleet, "kyc_poller_event_publish_latency_seconds_count") == transitions
        circuit = value(fleet, "kyc_poller_circuit_state", provider="notus", state="closed")
        assert circuit == 1
        assert value(fleet, "kyc_poller_fleet_refresh_timestamp_seconds") > time.time() - 60

        # The same configuration is healthy.
        check = subprocess.run(
            [sys.executable, "-m", "worker.entrypoints.health"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        directories = {path.name for path in metrics_dir.iterdir()}
        assert {str(worker.proc.pid), str(beat.proc.pid)} <= directories
    finally:
        for process in (beat, intake, control, worker):
            process.stop()
    # Each process group removed its metrics directory when it stopped.
    assert list(metrics_dir.iterdir()) == []
