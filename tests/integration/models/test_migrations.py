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


def test_0006_keeps_existing_rows_unwatched_and_downgrades(database_url):
    from datetime import UTC, datetime

    from sqlalchemy import text

    config = alembic_config(database_url)
    command.upgrade(config, "0005")
    engine = create_db_engine(database_url)
    created = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO verifications (provider, external_id, status, poll_attempts, "
                    "error_count, permanent_error_count, total_polls, version, created_at, "
                    "updated_at, finished_at) VALUES ('gu1', 'val-old', 'approved', 0, 0, 0, 1, "
                    "2, :t, :t, :t)"
                ),
                {"t": created},
            )
        command.upgrade(config, "0006")
        with engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT status, expires_at, reverification_event_at, last_sync_at "
                    "FROM verifications WHERE external_id = 'val-old'"
                )
            ).one()
        assert tuple(row) == ("approved", None, None, None)
        assert "verification_actions" in inspect(engine).get_table_names()
        command.downgrade(config, "0005")
        assert "verification_actions" not in inspect(engine).get_table_names()
        columns = {c["name"] for c in inspect(engine).get_columns("verifications")}
        assert not columns & {"expires_at", "reverification_event_at", "last_sync_at"}
    finally:
        engine.dispose()
