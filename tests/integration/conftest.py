"""Integration fixtures shared across directories."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from models.db import Database
from tasks.app import app
from worker.entrypoints.migrate import upgrade
from worker.runtime import Runtime, get_runtime, reset_runtime


@pytest.fixture
def runtime_env(monkeypatch, sqlite_url, redis_url, fake_providers) -> Iterator[Runtime]:
    """The tasks run eagerly (no broker) on a fresh runtime: SQLite, Redis, the fakes.

    Its events channel is unique to the test: `runtime_env.settings.events_channel`.
    """
    upgrade(sqlite_url)
    for name, value in fake_providers.provider_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KYC_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("KYC_REDIS_URL", redis_url)
    monkeypatch.setenv("KYC_EVENTS_CHANNEL", f"test.events.{uuid.uuid4().hex}")
    monkeypatch.setitem(app.conf, "task_always_eager", True)
    reset_runtime()
    yield get_runtime()
    reset_runtime()


@pytest.fixture
def sqlite_db(sqlite_url) -> Iterator[Database]:
    """A migrated SQLite database (stream tests need one only as the relay's input)."""
    upgrade(sqlite_url)
    database = Database(sqlite_url)
    yield database
    database.dispose()
