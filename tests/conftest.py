"""Shared fixtures: databases on both backends, and the service fixtures from tests/support."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from models.db import Database
from tests.support.event_keys import install_test_event_keys
from tests.support.providers import fake_providers  # noqa: F401
from tests.support.services import (  # noqa: F401
    postgres_server,
    postgres_url,
    redis_server,
    redis_url,
    restartable_redis,
)
from worker.entrypoints.migrate import upgrade

# Every process the suite starts signs and verifies events with one test key pair (its
# environment is inherited), as a deployment's workers and readers do with theirs.
install_test_event_keys()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'kyc.db'}"


# The fixtures that start or reach the PostgreSQL server: a test using one is a `postgres` test.
POSTGRES_FIXTURES = frozenset({"postgres_server", "postgres_url"})


@pytest.hookimpl(tryfirst=True)  # before `-m` selects on the markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that runs on PostgreSQL `postgres`, so `-m postgres` / `-m "not postgres"`
    split the suite: tests using a PostgreSQL fixture, and the `"postgres"` case of a test
    parametrized by backend (such as an indirect fixture that asks for `postgres_url` itself).
    """
    for item in items:
        callspec = getattr(item, "callspec", None)
        backends = callspec.params.values() if callspec is not None else ()
        uses_fixture = not POSTGRES_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))
        if uses_fixture or "postgres" in backends:
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
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
