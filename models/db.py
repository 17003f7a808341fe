"""Engines and sessions for SQLite (embedded default) and PostgreSQL.

SQLite is made fit for several worker processes: WAL journal, a busy timeout,
foreign keys on, and every transaction opened with BEGIN IMMEDIATE so writers
queue for the lock instead of failing when a read transaction upgrades.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
# The embedded default (KYC_DATABASE_URL unset): a SQLite file under var/.
DEFAULT_DATABASE_URL = "sqlite:///var/kyc_poller.db"


def _prepare_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_db_engine(database_url: str, **kwargs: Any) -> Engine:
    """Create an engine with the settings kyc-poller relies on for `database_url`.

    Statement parameters never appear in error texts (`hide_parameters`): they hold
    provider payloads, and error texts reach logs.
    """
    url = make_url(database_url)
    kwargs.setdefault("hide_parameters", True)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        _prepare_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


class Database:
    """An engine and session factory that is safe across fork().

    Celery's prefork pool forks worker processes after import: a connection
    pool inherited from the parent must not be shared, so the engine is
    (re)created lazily in each process.
    """

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self._pid: int | None = None
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None or self._pid != os.getpid():
            if self._engine is not None:
                self._engine.dispose(close=False)
            self._engine = create_db_engine(self.url)
            self._sessions = sessionmaker(self._engine, expire_on_commit=False)
            self._pid = os.getpid()
        return self._engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        _ = self.engine
        assert self._sessions is not None
        return self._sessions()

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        self._engine = None
        self._sessions = None
