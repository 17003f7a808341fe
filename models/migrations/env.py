"""Alembic environment: migrates the URL in the Alembic config, else KYC_DATABASE_URL.

`python -m worker.migrate` puts the configured URL into the config; plain
`alembic upgrade head` needs KYC_DATABASE_URL. Persistence imports nothing from
the worker's configuration.
"""

from __future__ import annotations

import os

from alembic import context

from models import Base
from models.db import create_db_engine

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("KYC_DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL: set KYC_DATABASE_URL or use python -m worker.migrate")
    return url


def run_migrations_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_db_engine(_database_url())
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
