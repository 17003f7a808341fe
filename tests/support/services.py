"""Real Redis and PostgreSQL servers for the tests, started from local binaries (no Docker).

Fixtures (import them into tests/conftest.py):

- `redis_server` (session): an EmbeddedRedis, or the server in KYC_TEST_REDIS_URL. Has `.url`.
- `redis_url` (function): that server's URL, its database flushed before the test.
- `restartable_redis` (function): a private EmbeddedRedis the test may stop() and start()
  again on the same port; stopped at teardown.
- `postgres_server` (session): a devkit.embedded_postgres.PostgresServer: a throwaway
  PostgreSQL cluster (initdb in a temp dir, trust auth, durability off), or the server in
  KYC_TEST_POSTGRES_URL. Has `.url` (admin URL).
- `postgres_url` (function): a fresh, empty database on it, dropped afterwards.

Missing binaries skip the tests that need them, except under CI=true, where they fail:
CI must not go green by silently skipping the PostgreSQL half of the suite.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NoReturn

import pytest
import redis

from devkit.embedded_postgres import PostgresNotFound, PostgresServer, PostgresUnavailable
from devkit.embedded_redis import EmbeddedRedis, RedisServerNotFound

REDIS_URL_ENV = "KYC_TEST_REDIS_URL"
POSTGRES_URL_ENV = "KYC_TEST_POSTGRES_URL"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip locally; fail in CI, where a missing service is a broken CI image."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: required, not skipped)", pytrace=False)
    pytest.skip(reason)


# --------------------------------------------------------------------------- Redis


@dataclass(frozen=True)
class ExternalRedis:
    """A Redis server someone else runs (KYC_TEST_REDIS_URL)."""

    url: str


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis | ExternalRedis]:
    external = os.environ.get(REDIS_URL_ENV)
    if external:
        yield ExternalRedis(external)
        return
    yield from _embedded_redis()


@pytest.fixture
def redis_url(redis_server) -> str:
    """The session server's URL, its database emptied first (FLUSHDB: only the URL's db)."""
    client = redis.Redis.from_url(redis_server.url, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()
    return redis_server.url


@pytest.fixture
def restartable_redis() -> Iterator[EmbeddedRedis]:
    """A server of the test's own, so stopping it cannot break other tests."""
    yield from _embedded_redis()


def _embedded_redis() -> Iterator[EmbeddedRedis]:
    """A started EmbeddedRedis, stopped afterwards; unavailable() when there is no binary."""
    try:
        server = EmbeddedRedis().start()
    except RedisServerNotFound as exc:
        unavailable(str(exc))
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    external = os.environ.get(POSTGRES_URL_ENV)
    if external:
        yield PostgresServer(external)
        return
    try:
        server = PostgresServer.open()
    except PostgresNotFound as exc:
        unavailable(f"{exc}; or set {POSTGRES_URL_ENV}")
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    with server:
        yield server


@pytest.fixture
def postgres_url(request, postgres_server) -> Iterator[str]:
    """A new, empty database of the test's own (psycopg 3 SQLAlchemy URL); dropped afterwards."""
    if request.node.get_closest_marker("postgres") is None:
        # tests/conftest.py marks the tests it can see use PostgreSQL; one it missed would
        # escape `-m "not postgres"` (and run without PostgreSQL where that is the point).
        pytest.fail(f"{request.node.nodeid} uses PostgreSQL but is not marked `postgres`")
    with postgres_server.temporary_database() as url:
        yield url
