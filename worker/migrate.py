"""Bring a database up to the latest schema with Alembic (`python -m worker.migrate`)."""

from __future__ import annotations

import sys

from alembic import command
from alembic.config import Config

from worker.config import Settings


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "models:migrations")
    # ConfigParser interpolation: a literal % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def main() -> int:
    settings = Settings.from_env()
    upgrade(settings.database_url)
    print("database is at the latest schema", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
