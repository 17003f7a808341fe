from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from models import Base
from models.db import create_db_engine
from worker.entrypoints.migrate import alembic_config, upgrade


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


def test_the_retention_index_built_by_hand_first_is_kept(database_url):
    # 0004's advice on a large PostgreSQL table: build the index CONCURRENTLY, then upgrade.
    command.upgrade(alembic_config(database_url), "0003")
    engine = create_db_engine(database_url)
    where = (
        "result ? 'response'"
        if engine.dialect.name == "postgresql"
        else "json_type(result, '$.response') IS NOT NULL"
    )
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE INDEX ix_verifications_response_kept "
                f"ON verifications (finished_at, id) WHERE {where}"
            )
    finally:
        engine.dispose()
    upgrade(database_url)
    engine = create_db_engine(database_url)
    try:
        indexes = {i["name"] for i in inspect(engine).get_indexes("verifications")}
        assert "ix_verifications_response_kept" in indexes
    finally:
        engine.dispose()
