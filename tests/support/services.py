"""Real Redis and PostgreSQL servers for the tests, started from local binaries (no Docker).

Fixtures (import them into tests/conftest.py):

- `redis_server` (session): an EmbeddedRedis, or the server in KYC_TEST_REDIS_URL. Has `.url`.
- `redis_url` (function): that server's URL, its database flushed before the test.
- `restartable_redis` (function): a private EmbeddedRedis the test may stop() and start()
  again on the same port; stopped at teardown.
- `postgres_server` (session): a throwaway PostgreSQL cluster (initdb in a temp dir, trust
  auth, durability off), or the server in KYC_TEST_POSTGRES_URL. Has `.url` (admin URL).
- `postgres_url` (function): a fresh, empty database on it, dropped afterwards.

Missing binaries skip the tests that need them, except under CI=true, where they fail:
CI must not go green by silently skipping the PostgreSQL half of the suite.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
import redis
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from devkit.embedded_redis import EmbeddedRedis, RedisServerNotFound, free_port

REDIS_URL_ENV = "KYC_TEST_REDIS_URL"
POSTGRES_URL_ENV = "KYC_TEST_POSTGRES_URL"
PG_OS_USER = "postgres"
PG_SUPERUSER = "postgres"


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


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


class PostgresStartError(RuntimeError):
    """The throwaway cluster did not come up."""


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path)) or (0,)


def find_postgres_bindir() -> Path | None:
    """A directory with initdb, pg_ctl and postgres: PATH first, then /usr/lib/postgresql/*/bin.

    Debian puts the server binaries only in the versioned directory (PATH has wrappers
    for client tools at most), hence the fallback; the newest version wins.
    """
    candidates: list[Path] = []
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
        candidates.append(Path(initdb).parent)
    candidates += [
        Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key)[::-1]
    ]
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


def _world_traversable(path: Path) -> bool:
    """Can another user reach files below `path` (execute bit for others on every parent)?"""
    path = path.resolve()
    for part in [path, *path.parents]:
        try:
            if not os.stat(part).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


class PostgresServer:
    """A PostgreSQL server: our throwaway cluster, or an external one (KYC_TEST_POSTGRES_URL)."""

    def __init__(self, url: URL, *, cluster: PostgresCluster | None = None) -> None:
        self._url = url.set(drivername="postgresql+psycopg")
        self.cluster = cluster

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the maintenance database (superuser for our own cluster)."""
        return self._url.render_as_string(hide_password=False)

    def database_url(self, name: str) -> str:
        return self._url.set(database=name).render_as_string(hide_password=False)

    def _admin(self) -> psycopg.Connection:
        conninfo = self._url.set(drivername="postgresql").render_as_string(hide_password=False)
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=10)

    def create_database(self, prefix: str = "kyc_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:16]}"
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        """Drop it even if the test (or a worker it started) left connections open."""
        with self._admin() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            force = sql.SQL(" WITH (FORCE)") if conn.info.server_version >= 130000 else sql.SQL("")
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {}{}").format(sql.Identifier(name), force)
            )


class PostgresCluster:
    """initdb + pg_ctl in a temp dir; runs as the `postgres` OS user when we are root.

    Durability is off (fsync, synchronous_commit, full_page_writes): the data is thrown
    away, and the tests run several times faster without it.
    """

    def __init__(self, bindir: Path, *, max_connections: int = 200) -> None:
        self.bindir = bindir
        self.max_connections = max_connections
        self.port: int | None = None
        self.base: Path | None = None
        self.startup_seconds: float | None = None
        self._as_user: list[str] = []

    @property
    def root(self) -> Path:
        if self.base is None:
            raise PostgresStartError("the cluster has not been created")
        return self.base

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    @property
    def url(self) -> URL:
        return URL.create(
            "postgresql+psycopg",
            username=PG_SUPERUSER,
            host="127.0.0.1",
            port=self.port,
            database="postgres",
        )

    def _make_base(self) -> Path:
        if os.geteuid() != 0:
            return Path(tempfile.mkdtemp(prefix="kyc-pg-"))
        # PostgreSQL refuses to run as root: the server runs as `postgres`, which must be
        # able to reach its data dir, so the temp dir must sit under a traversable base.
        try:
            entry = pwd.getpwnam(PG_OS_USER)
        except KeyError as exc:
            raise PostgresUnavailable(
                f"running as root and there is no {PG_OS_USER!r} OS user to run PostgreSQL as"
            ) from exc
        if not shutil.which("runuser"):
            raise PostgresUnavailable("running as root and `runuser` is not available")
        bases = [Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp")]
        base_dir = next((b for b in bases if b.is_dir() and _world_traversable(b)), None)
        if base_dir is None:
            raise PostgresStartError("no temp dir the postgres user can reach (set TMPDIR)")
        base = Path(tempfile.mkdtemp(prefix="kyc-pg-", dir=base_dir))
        os.chown(base, entry.pw_uid, entry.pw_gid)
        self._as_user = ["runuser", "-u", PG_OS_USER, "--"]
        return base

    def _run(self, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        env.pop("PGDATA", None)
        return subprocess.run(
            [*self._as_user, *argv],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=self.base,
            check=False,
        )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def start(self) -> PostgresCluster:
        started = time.monotonic()
        self.base = self._make_base()
        try:
            self._initdb()
            self._start_server()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _initdb(self) -> None:
        result = self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                PG_SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        if result.returncode != 0:
            raise PostgresStartError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        socket_dir = self.root / "socket"
        socket_dir.mkdir()
        shutil.chown(socket_dir, *self._owner())
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{socket_dir}'",
            "max_connections": str(self.max_connections),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "'32MB'",
            "log_min_messages": "warning",
            "log_min_error_statement": "panic",  # tests provoke errors on purpose
        }
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write("\n# kyc-poller test cluster\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _owner(self) -> tuple[int, int]:
        info = os.stat(self.root)
        return info.st_uid, info.st_gid

    def _start_server(self, *, same_port: bool = False) -> None:
        # A free port can be taken before the server binds it; pick another and retry.
        for attempt in range(3):
            if not same_port:
                self.port = free_port()
            with (self.datadir / "postgresql.conf").open("a") as conf:
                conf.write(f"port = {self.port}\n")  # the last setting wins
            result = self._run(
                [
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.datadir),
                    "-l",
                    str(self.log_path),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            )
            if result.returncode == 0:
                return
            log = self._log_tail()
            port_taken = "could not bind" in log or "already in use" in log
            if port_taken and attempt < 2 and not same_port:
                continue
            raise PostgresStartError(
                f"pg_ctl start failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                f"server log tail:\n{log}"
            )

    def pause(self) -> None:
        """Stop the server but keep its data: the database is "down" until resume()."""
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "stop"])

    def resume(self) -> None:
        """Start the paused server again on the same port, with its data."""
        self._start_server(same_port=True)

    def stop(self) -> None:
        """Immediate shutdown (nothing to keep), then remove everything."""
        if self.base is None:
            return
        if (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._run(
                    [
                        str(self.bindir / "pg_ctl"),
                        "-D",
                        str(self.datadir),
                        "-m",
                        "immediate",
                        "stop",
                    ],
                    timeout=60,
                )
        shutil.rmtree(self.base, ignore_errors=True)
        self.base = None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    external = os.environ.get(POSTGRES_URL_ENV)
    if external:
        yield PostgresServer(make_url(external))
        return
    bindir = find_postgres_bindir()
    if bindir is None:
        unavailable(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in "
            f"/usr/lib/postgresql/*/bin; install PostgreSQL or set {POSTGRES_URL_ENV}"
        )
    cluster = PostgresCluster(bindir)
    try:
        cluster.start()
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    try:
        yield PostgresServer(cluster.url, cluster=cluster)
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(request, postgres_server) -> Iterator[str]:
    """A new, empty database of the test's own (psycopg 3 SQLAlchemy URL); dropped afterwards."""
    if request.node.get_closest_marker("postgres") is None:
        # tests/conftest.py marks the tests it can see use PostgreSQL; one it missed would
        # escape `-m "not postgres"` (and run without PostgreSQL where that is the point).
        pytest.fail(f"{request.node.nodeid} uses PostgreSQL but is not marked `postgres`")
    name = postgres_server.create_database()
    try:
        yield postgres_server.database_url(name)
    finally:
        postgres_server.drop_database(name)
