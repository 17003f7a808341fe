"""Shared fixtures: databases on both backends, and the service fixtures from tests/support."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from models.db import Database
from tests.support.providers import fake_providers  # noqa: F401
from tests.support.services import (  # noqa: F401
    postgres_server,
    postgres_url,
    redis_server,
    redis_url,
    restartable_redis,
)
from worker.migrate import upgrade


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'kyc.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> str:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kyc.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def db(database_url) -> Iterator[Database]:
    """A migrated database (SQLite and PostgreSQL)."""
    upgrade(database_url)
    database = Database(database_url)
    yield database
    database.dispose()
