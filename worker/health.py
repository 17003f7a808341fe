"""`python -m worker.health`: can this process's configuration reach its database and broker?

The liveness/readiness check of poll workers, the control worker and beat (the
`healthcheck:` of their docker-compose services): with the same environment as
the process, it reads the database's schema revision (it must be this code's, or
a newer one) and runs `PING` on the broker (and on
the events/governor Redis when that is another server), each bounded by a short
timeout, prints one line and exits 0 when every check passed, else 1:

    healthy: database ok (2 ms), broker ok (1 ms)
    unhealthy: database failed (OperationalError: connection refused), broker ok (1 ms)

Nothing is created or written: a SQLite file that does not exist is a failure.
Credentials never appear in the line.
"""

from __future__ import annotations

import argparse
import functools
import math
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from worker.config import Settings
from worker.migrate import alembic_config

DEFAULT_TIMEOUT_SECONDS = 3.0
MAX_ERROR_CHARS = 200


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    seconds: float
    error: str = ""

    def describe(self) -> str:
        if self.ok:
            return f"{self.name} ok ({self.seconds * 1000:.0f} ms)"
        return f"{self.name} failed ({self.error})"


class SchemaNotReady(RuntimeError):
    """The database answers but lacks the schema this code needs (not migrated, or behind)."""


SCHEMA_QUERY = "SELECT version_num FROM alembic_version"


@functools.cache
def _schema_revisions() -> tuple[str, frozenset[str]]:
    """This code's head revision and every revision it knows (read once per process)."""
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = scripts.get_current_head()
    assert head is not None
    return head, frozenset(revision.revision for revision in scripts.walk_revisions())


def check_schema(versions: Sequence[str]) -> None:
    """Raise SchemaNotReady unless the database is at this code's head revision.

    A revision this code does not know is newer (migrations run before a rollout and
    only add): the old code keeps working with it, so that passes.
    """
    head, known = _schema_revisions()
    if not versions:
        raise SchemaNotReady("no schema: run `python -m worker.migrate`")
    version = versions[0]
    if version != head and version in known:
        raise SchemaNotReady(
            f"schema at {version}, this code needs {head}: run `python -m worker.migrate`"
        )


def check_database(url: str, timeout: float) -> None:
    """The database answers and has this code's schema (raises on failure).

    SQLite: the file must exist; it is opened read-only."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ":memory:"
        target = database if database == ":memory:" else f"file:{database}?mode=ro"
        sqlite = sqlite3.connect(target, uri=database != ":memory:", timeout=timeout)
        try:
            try:
                rows = sqlite.execute(SCHEMA_QUERY).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" not in str(exc):
                    raise
                rows = []
        finally:
            sqlite.close()
        check_schema([str(row[0]) for row in rows])
        return
    connect_args: dict[str, object] = {}
    if parsed.get_backend_name() == "postgresql":
        # libpq counts whole seconds; the statement timeout bounds a server that accepts
        # connections but cannot answer.
        connect_args = {
            "connect_timeout": max(1, math.ceil(timeout)),
            "options": f"-c statement_timeout={max(1, int(timeout * 1000))}",
        }
    engine = create_engine(
        parsed, poolclass=NullPool, connect_args=connect_args, hide_parameters=True
    )
    try:
        with engine.connect() as connection:
            versions: list[str] = []
            if inspect(connection).has_table("alembic_version"):
                versions = [str(v) for v in connection.execute(text(SCHEMA_QUERY)).scalars()]
    finally:
        engine.dispose()
    check_schema(versions)


def check_redis(url: str, timeout: float) -> None:
    """PING (raises on failure)."""
    client = redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
    )
    try:
        if not client.ping():
            raise redis.RedisError("PING was not answered with PONG")
    finally:
        client.close()


def check_broker(url: str, timeout: float) -> None:
    """The Celery broker: a Redis PING, or a kombu connection for other transports."""
    if urlsplit(url).scheme in {"redis", "rediss", "unix"}:
        check_redis(url, timeout)
        return
    from kombu.connection import Connection

    with Connection(url, connect_timeout=timeout) as connection:  # type: ignore[no-untyped-call]
        connection.ensure_connection(max_retries=1, timeout=timeout)


def run_checks(settings: Settings, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> list[CheckResult]:
    """Every check at once, each bounded by `timeout` (and a hard deadline just above it)."""
    checks: list[tuple[str, Callable[[], None], Sequence[str]]] = [
        (
            "database",
            lambda: check_database(settings.database_url, timeout),
            [settings.database_url],
        ),
        (
            "broker",
            lambda: check_broker(settings.effective_broker_url, timeout),
            [settings.effective_broker_url],
        ),
    ]
    if _server(settings.redis_url) != _server(settings.effective_broker_url):
        checks.append(
            ("redis", lambda: check_redis(settings.redis_url, timeout), [settings.redis_url])
        )
    runs = [_Run(name, check, secrets_of(urls)) for name, check, urls in checks]
    for run in runs:
        run.thread.start()
    deadline = time.monotonic() + timeout + 1.0
    return [run.result(deadline) for run in runs]


class _Run:
    """One check in a daemon thread: a check stuck past the deadline cannot hold the exit."""

    def __init__(self, name: str, check: Callable[[], None], secrets: Sequence[str]) -> None:
        self.name = name
        self.check = check
        self.secrets = secrets
        self.outcome: CheckResult | None = None
        self.started = time.perf_counter()
        self.thread = threading.Thread(target=self._run, name=f"health-{name}", daemon=True)

    def _run(self) -> None:
        try:
            self.check()
        except Exception as exc:
            # SQLAlchemy wraps the driver's error: the driver's says it without the boilerplate.
            cause = getattr(exc, "orig", None)
            shown = cause if isinstance(cause, Exception) else exc
            error = redact(f"{type(shown).__name__}: {shown}", self.secrets)
            self.outcome = CheckResult(self.name, False, self._elapsed(), error)
        else:
            self.outcome = CheckResult(self.name, True, self._elapsed())

    def _elapsed(self) -> float:
        return time.perf_counter() - self.started

    def result(self, deadline: float) -> CheckResult:
        self.thread.join(max(deadline - time.monotonic(), 0.0))
        if self.outcome is None:
            return CheckResult(self.name, False, self._elapsed(), "timed out")
        return self.outcome


def _server(url: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port, parts.path


def secrets_of(urls: Sequence[str]) -> list[str]:
    """The passwords in these URLs (never printed)."""
    found = []
    for url in urls:
        try:
            password = urlsplit(url).password
        except ValueError:
            continue
        if password:
            found.append(password)
    return found


def redact(message: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        message = message.replace(secret, "***")
    message = " ".join(message.split())  # one line
    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 1] + "…"
    return message


def summary(results: Sequence[CheckResult]) -> str:
    healthy = all(result.ok for result in results)
    details = ", ".join(result.describe() for result in results)
    return f"{'healthy' if healthy else 'unhealthy'}: {details}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m worker.health",
        description="Exit 0 if the database and the broker answer, else 1 (one line either way).",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        help="seconds each check may take (default %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except Exception as exc:
        print(f"unhealthy: configuration ({type(exc).__name__}: {exc})", flush=True)
        return 1
    results = run_checks(settings, max(args.timeout, 0.1))
    print(summary(results), flush=True)
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
