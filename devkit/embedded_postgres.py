"""A throwaway PostgreSQL cluster for the tests and the benchmarks, without Docker.

Runs the machine's own server binaries (initdb, pg_ctl, postgres: PATH first,
else Debian's /usr/lib/postgresql/<version>/bin) on a cluster in a temporary
directory, listening on a loopback port with trust authentication. Durability
is off (fsync, synchronous_commit, full_page_writes): the data is thrown away,
and the tests run several times faster without it. PostgreSQL refuses to run as
root, so under root the server runs as the `postgres` OS user (via runuser).

`PostgresServer` is what callers hand out: a server to create and drop
databases on, either such a cluster of our own or someone else's (a URL).

    with PostgresServer.open() as server:          # or PostgresServer.open(url)
        with server.temporary_database() as url:
            ...
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
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from devkit.embedded_redis import free_port
from devkit.lifecycle import StartedInWith

OS_USER = "postgres"
SUPERUSER = "postgres"
SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
INSTALL_HINT = (
    "install them with `apt-get install postgresql` (Debian/Ubuntu; they land in "
    "/usr/lib/postgresql/<version>/bin, which is searched) or put a PostgreSQL bin/ on PATH"
)


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot run here: no server binaries, or root without a user to run it as."""


class PostgresNotFound(PostgresUnavailable):
    """No directory with initdb, pg_ctl and postgres on this machine."""

    def __init__(self) -> None:
        super().__init__(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in "
            f"/usr/lib/postgresql/*/bin; {INSTALL_HINT}"
        )


class PostgresStartError(RuntimeError):
    """The binaries are there but the cluster did not come up (initdb or pg_ctl failed)."""


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
        if all(os.access(directory / name, os.X_OK) for name in SERVER_BINARIES):
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


class PostgresCluster(StartedInWith):
    """initdb + pg_ctl in a temp dir on a loopback port; a context manager.

    It can be paused and resumed on the same port with its data, so tests can play
    "the database went away and came back".
    """

    def __init__(self, bindir: Path | None = None, *, max_connections: int = 200) -> None:
        self._bindir = bindir
        self.max_connections = max_connections
        self.port: int | None = None
        self.base: Path | None = None
        self._as_user: list[str] = []

    @property
    def bindir(self) -> Path:
        """The server binaries' directory: the one given, else found now (PostgresNotFound)."""
        if self._bindir is None:
            self._bindir = find_postgres_bindir()
            if self._bindir is None:
                raise PostgresNotFound()
        return self._bindir

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
        """SQLAlchemy URL of the `postgres` database as the superuser (trust auth: no password)."""
        return URL.create(
            "postgresql+psycopg",
            username=SUPERUSER,
            host="127.0.0.1",
            port=self.port,
            database="postgres",
        )

    @property
    def postmaster_pid(self) -> int | None:
        """The running server's process id (its postmaster.pid), for measuring its CPU."""
        try:
            return int((self.datadir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError, PostgresStartError):
            return None

    def _make_base(self) -> Path:
        if os.geteuid() != 0:
            return Path(tempfile.mkdtemp(prefix="kyc-pg-"))
        # PostgreSQL refuses to run as root: the server runs as `postgres`, which must be
        # able to reach its data dir, so the temp dir must sit under a traversable base.
        try:
            entry = pwd.getpwnam(OS_USER)
        except KeyError as exc:
            raise PostgresUnavailable(
                f"running as root and there is no {OS_USER!r} OS user to run PostgreSQL as"
            ) from exc
        if not shutil.which("runuser"):
            raise PostgresUnavailable("running as root and `runuser` is not available")
        bases = [Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp")]
        base_dir = next((b for b in bases if b.is_dir() and _world_traversable(b)), None)
        if base_dir is None:
            raise PostgresStartError("no temp dir the postgres user can reach (set TMPDIR)")
        base = Path(tempfile.mkdtemp(prefix="kyc-pg-", dir=base_dir))
        os.chown(base, entry.pw_uid, entry.pw_gid)
        self._as_user = ["runuser", "-u", OS_USER, "--"]
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

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, PostgresStartError):
            return "(no server log)"

    def start(self) -> Self:
        """Create the cluster and start its server; everything is removed again if that fails.

        Raises PostgresUnavailable (PostgresNotFound: no binaries) when PostgreSQL cannot
        run here at all, PostgresStartError when it could but did not come up.
        """
        bindir = self.bindir  # before any temp dir exists
        self.base = self._make_base()
        try:
            self._initdb(bindir)
            self._start_server()
        except BaseException:
            self.stop()
            raise
        return self

    def _initdb(self, bindir: Path) -> None:
        result = self._run(
            [
                str(bindir / "initdb"),
                "-D", str(self.datadir),
                "-U", SUPERUSER,
                "--auth=trust",
                "-E", "UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )  # fmt: skip
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
            conf.write("\n# kyc-poller throwaway cluster (devkit.embedded_postgres)\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _owner(self) -> tuple[int, int]:
        info = os.stat(self.root)
        return info.st_uid, info.st_gid

    def _pg_ctl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args], timeout)

    def _start_server(self, *, same_port: bool = False) -> None:
        # A free port can be taken before the server binds it; pick another and retry.
        for attempt in range(3):
            if not same_port:
                self.port = free_port()
            with (self.datadir / "postgresql.conf").open("a") as conf:
                conf.write(f"port = {self.port}\n")  # the last setting wins
            result = self._pg_ctl("-l", str(self.log_path), "-w", "-t", "60", "start")
            if result.returncode == 0:
                return
            log = self.log_tail()
            port_taken = "could not bind" in log or "already in use" in log
            if port_taken and attempt < 2 and not same_port:
                continue
            raise PostgresStartError(
                f"pg_ctl start failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                f"server log tail:\n{log}"
            )

    def pause(self) -> None:
        """Stop the server but keep its data: the database is "down" until resume()."""
        self._pg_ctl("-m", "fast", "stop")

    def resume(self) -> None:
        """Start the paused server again on the same port, with its data."""
        self._start_server(same_port=True)

    def stop(self) -> None:
        """Immediate shutdown (nothing to keep), then remove everything."""
        if self.base is None:
            return
        if (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._pg_ctl("-m", "immediate", "stop", timeout=60)
        shutil.rmtree(self.base, ignore_errors=True)
        self.base = None

    def __repr__(self) -> str:
        state = "created" if self.base is not None else "not created"
        return f"PostgresCluster(port={self.port}, {state})"


class PostgresServer(StartedInWith):
    """A PostgreSQL server to make databases on: our own cluster, or an external one (a URL).

    A context manager: leaving it stops our own cluster; an external server is left running.
    """

    def __init__(self, url: URL | str, *, cluster: PostgresCluster | None = None) -> None:
        self._url = make_url(url).set(drivername="postgresql+psycopg")
        self.cluster = cluster

    @classmethod
    def open(cls, url: str | None = None) -> PostgresServer:
        """The server at `url` if given, else a throwaway cluster started now (see start())."""
        if url:
            return cls(url)
        cluster = PostgresCluster().start()
        return cls(cluster.url, cluster=cluster)

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the maintenance database (superuser for our own cluster)."""
        return self._url.render_as_string(hide_password=False)

    def database_url(self, name: str) -> str:
        return self._url.set(database=name).render_as_string(hide_password=False)

    def _admin(self) -> psycopg.Connection[tuple[Any, ...]]:
        conninfo = self._url.set(drivername="postgresql").render_as_string(hide_password=False)
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=10)

    def create_database(self, prefix: str = "kyc_test") -> str:
        """A new, empty database with a unique name (`prefix`_<random>); returns the name."""
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

    @contextlib.contextmanager
    def temporary_database(self, prefix: str = "kyc_test") -> Iterator[str]:
        """A new, empty database's SQLAlchemy URL (psycopg 3), dropped on leaving."""
        name = self.create_database(prefix)
        try:
            yield self.database_url(name)
        finally:
            self.drop_database(name)

    def stop(self) -> None:
        """Stop and remove our own cluster, if this is one; an external server is left alone."""
        if self.cluster is not None:
            self.cluster.stop()

    def __repr__(self) -> str:
        owner = "own cluster" if self.cluster is not None else "external"
        return f"PostgresServer({self._url.render_as_string(hide_password=True)}, {owner})"


class BenchDatabases(StartedInWith):
    """A fresh, empty database per measurement, for the benchmark scripts.

    SQLite: a new file in `workdir`, removed afterwards with its journal files.
    PostgreSQL: a new database on the server at `postgres_url`, else on a throwaway
    cluster; `start_postgres` must run first (it raises PostgresUnavailable).
    """

    def __init__(self, workdir: Path, postgres_url: str | None, *, prefix: str) -> None:
        self.workdir = workdir
        self.postgres_url = postgres_url
        self.prefix = prefix
        self._server: PostgresServer | None = None
        self._runs = 0

    def start_postgres(self) -> None:
        self._server = PostgresServer.open(self.postgres_url)

    @property
    def postmaster_pid(self) -> int | None:
        """Our own cluster's server process (to measure its CPU); None for an external one."""
        if self._server is None or self._server.cluster is None:
            return None
        return self._server.cluster.postmaster_pid

    @contextlib.contextmanager
    def fresh(self, kind: str) -> Iterator[str]:
        """A new database's SQLAlchemy URL (`kind` "sqlite" or "postgres"), gone on leaving."""
        self._runs += 1
        if kind == "sqlite":
            path = self.workdir / f"{self.prefix}-{self._runs}.db"
            try:
                yield f"sqlite:///{path}"
            finally:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        if self._server is None:
            raise PostgresUnavailable("PostgreSQL was not started (start_postgres)")
        with self._server.temporary_database(self.prefix) as url:
            yield url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
