"""Bring a database up to the latest schema with Alembic (`python -m worker.migrate`)."""

from __future__ import annotations

import sys

from alembic import command

from models.schema import alembic_config
from worker.config import Settings

__all__ = ["alembic_config", "main", "upgrade"]


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def main() -> int:
    settings = Settings.from_env()
    upgrade(settings.database_url)
    print("database is at the latest schema", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
