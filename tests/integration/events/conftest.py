"""Stream tests need a database only as the relay's input: SQLite unless a test asks for db."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from models.db import Database
from worker.migrate import upgrade


@pytest.fixture
def sqlite_db(sqlite_url) -> Iterator[Database]:
    upgrade(sqlite_url)
    database = Database(sqlite_url)
    yield database
    database.dispose()
