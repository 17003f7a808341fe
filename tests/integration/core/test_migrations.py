from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from models import Base
from models.db import create_db_engine
from worker.migrate import alembic_config, upgrade


def test_migrations_build_exactly_the_models_schema(database_url):
    upgrade(database_url)
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert diff == []
        indexes = {i["name"] for i in inspect(engine).get_indexes("verifications")}
        assert "ix_verifications_provider_next_poll_at" in indexes
        assert "ix_verifications_next_poll_at" not in indexes
    finally:
        engine.dispose()


def test_migrations_downgrade_and_upgrade_again(database_url):
    upgrade(database_url)
    command.downgrade(alembic_config(database_url), "base")
    engine = create_db_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    upgrade(database_url)
    engine = create_db_engine(database_url)
    try:
        assert {"verifications", "verification_transitions", "event_outbox"} <= set(
            inspect(engine).get_table_names()
        )
    finally:
        engine.dispose()
