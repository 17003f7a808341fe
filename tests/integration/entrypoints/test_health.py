"""`python -m worker.health` against real servers: healthy when the database and the broker
answer, unhealthy (exit 1, one line, no credentials) when either is down or hangs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command

from devkit.embedded_redis import free_port
from models.db import create_db_engine
from models.schema import alembic_config
from worker.config import Settings
from worker.entrypoints.migrate import upgrade
from worker.services import checks

ROOT = Path(__file__).resolve().parents[3]


def run_health(database_url: str, redis_url: str, *args: str, **extra: str):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"KYC_BROKER_URL", "REDIS_URL", "KYC_RESULT_BACKEND"}
    }
    env.update(KYC_DATABASE_URL=database_url, KYC_REDIS_URL=redis_url, **extra)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "worker.health", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, time.monotonic() - started


@pytest.fixture
def migrated_url(database_url) -> str:
    upgrade(database_url)
    return database_url


def test_healthy_when_the_database_and_the_broker_answer(migrated_url, redis_url):
    done, _ = run_health(migrated_url, redis_url)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("healthy: database ok (")
    assert "broker ok (" in lines[0]


def test_unhealthy_when_the_database_is_down(redis_url):
    url = f"postgresql+psycopg://kyc:db-secret-pw@127.0.0.1:{free_port()}/kyc"
    done, _ = run_health(url, redis_url)
    assert done.returncode == 1
    line = done.stdout.strip()
    assert line.startswith("unhealthy: database failed (")
    assert "broker ok" in line
    assert "db-secret-pw" not in done.stdout + done.stderr


def test_a_sqlite_file_that_does_not_exist_is_a_failure_and_is_not_created(tmp_path, redis_url):
    path = tmp_path / "missing" / "kyc.db"
    done, _ = run_health(f"sqlite:///{path}", redis_url)
    assert done.returncode == 1
    assert done.stdout.startswith("unhealthy: database failed")
    assert not path.parent.exists()


def test_unhealthy_while_redis_is_down_and_healthy_again_after(migrated_url, restartable_redis):
    url = restartable_redis.url
    assert run_health(migrated_url, url)[0].returncode == 0
    restartable_redis.stop()
    done, _ = run_health(migrated_url, url)
    assert done.returncode == 1
    assert "broker failed (" in done.stdout and "database ok" in done.stdout
    restartable_redis.start()
    assert run_health(migrated_url, url)[0].returncode == 0


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections and never answers (a hung server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_a_hung_broker_fails_within_the_timeout(migrated_url, silent_server):
    done, elapsed = run_health(migrated_url, f"redis://127.0.0.1:{silent_server}/0", "--timeout=1")
    assert done.returncode == 1
    assert "broker failed (" in done.stdout
    assert elapsed < 10


def test_a_hung_database_fails_within_the_timeout(redis_url, silent_server):
    url = f"postgresql+psycopg://kyc@127.0.0.1:{silent_server}/kyc"
    done, elapsed = run_health(url, redis_url, "--timeout=1")
    assert done.returncode == 1
    assert "database failed (" in done.stdout
    assert elapsed < 10


def test_the_events_redis_is_checked_when_it_is_not_the_broker(migrated_url, redis_url):
    down = f"redis://:redis-secret@127.0.0.1:{free_port()}/0"
    done, _ = run_health(migrated_url, down, KYC_BROKER_URL=redis_url)
    assert done.returncode == 1
    assert "broker ok" in done.stdout and "redis failed (" in done.stdout
    assert "redis-secret" not in done.stdout


def test_the_checks_in_process(migrated_url, redis_url):
    settings = Settings.from_env({"KYC_DATABASE_URL": migrated_url, "KYC_REDIS_URL": redis_url})
    results = checks.health_checks(settings, timeout=2)
    assert [(r.name, r.passed) for r in results] == [("database", True), ("broker", True)]
    assert checks.health_line(results).startswith("healthy: ")


def test_a_bad_configuration_is_unhealthy(migrated_url, redis_url):
    done, _ = run_health(migrated_url, redis_url, KYC_POLL_BATCH_SIZE="lots")
    assert done.returncode == 1
    assert done.stdout.startswith("unhealthy: configuration (")


def database_check(url):
    return checks.database_check(url, timeout=2)


def test_a_database_without_the_schema_is_unhealthy(database_url, redis_url, tmp_path):
    # SELECT 1 passed on an unmigrated database (or an empty SQLite file): a worker that
    # cannot poll was reported healthy.
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    # (A missing SQLite file is its own failure, tested above: here an existing empty one.)
    unmigrated = [] if database_url.startswith("sqlite") else [database_url]
    for url in (*unmigrated, f"sqlite:///{empty}"):
        check = database_check(url)
        assert not check.passed and "no schema" in check.detail


def test_one_schema_rule_behind_fails_current_passes_newer_passes_with_a_warning(database_url):
    command.upgrade(alembic_config(database_url), "0003")
    behind = database_check(database_url)
    assert not behind.passed and "schema at revision 0003, this code needs" in behind.detail
    upgrade(database_url)
    assert database_check(database_url).status is checks.CheckStatus.OK
    # Migrations run before a rollout and only add: the code still running keeps working.
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    finally:
        engine.dispose()
    newer = database_check(database_url)
    assert newer.passed and newer.status is checks.CheckStatus.WARN
    assert "do not know" in newer.detail and newer.data["revision"] == ["9999"]
