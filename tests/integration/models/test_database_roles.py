"""Least-privilege PostgreSQL roles (deploy/postgres, migration 0007) on a real server.

One database for the module: deploy/postgres/10-kyc-roles.sh runs in it as compose runs
it (psql, passwords from the environment), the migrations run as kyc_owner, then each
test acts as one role. The embedded cluster trusts loopback logins, so passwords are not
what is tested here: privileges are (authentication is the server's job).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import errors
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, ProgrammingError

from models import OutboxEvent, Verification, utcnow
from models.db import Database
from tests.doubles import NO_TRANSPORT, FakeClock, ScriptedAdapter, result, run_coroutine
from tests.support.event_keys import session_signer
from tests.support.services import unavailable
from worker.adapters.sql_store import SqlStore
from worker.domain.decisions import PollPolicy
from worker.domain.errors import TrackingConflictError
from worker.migrate import upgrade
from worker.services.polling import PollEngine
from worker.services.relay import OutboxRelay
from worker.services.retention import Retention
from worker.services.tracking import track_verification

ROOT = Path(__file__).resolve().parents[3]
INIT_SCRIPT = ROOT / "deploy/postgres/10-kyc-roles.sh"
PASSWORDS = {
    "KYC_DB_OWNER_PASSWORD": "owner-pw-'quoted'",
    "KYC_DB_WORKER_PASSWORD": "worker pw; DROP TABLE x",
    "KYC_DB_APP_PASSWORD": "app-pw\\n",
}
PREDICATE_ID = "550e8400-e29b-41d4-a716-446655440000"


def run_init(admin_url: str, **overrides: str) -> subprocess.CompletedProcess[str]:
    """deploy/postgres/10-kyc-roles.sh against the database in `admin_url` (a superuser)."""
    url = make_url(admin_url)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "KYC_DB_"))},
        "PGHOST": url.host or "127.0.0.1",
        "PGPORT": str(url.port or 5432),
        "POSTGRES_USER": url.username or "postgres",
        "POSTGRES_DB": url.database or "postgres",
        **PASSWORDS,
    }
    if url.password:
        env["PGPASSWORD"] = url.password
    for name, value in overrides.items():
        if value == "":
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        ["bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )


def role_url(admin_url: str, role: str) -> str:
    password = {
        "kyc_owner": PASSWORDS["KYC_DB_OWNER_PASSWORD"],
        "kyc_worker": PASSWORDS["KYC_DB_WORKER_PASSWORD"],
        "kyc_app": PASSWORDS["KYC_DB_APP_PASSWORD"],
    }[role]
    url = make_url(admin_url).set(username=role, password=password)
    return url.render_as_string(hide_password=False)


def conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def roles_db(postgres_server):
    if shutil.which("psql") is None:
        unavailable("psql is not installed (apt-get install postgresql-client)")
    with postgres_server.temporary_database("kyc_roles") as admin_url:
        done = run_init(admin_url)
        assert done.returncode == 0, done.stderr
        upgrade(role_url(admin_url, "kyc_owner"))
        yield admin_url


@pytest.fixture
def as_role(roles_db):
    opened: list[Database] = []

    def open_as(role: str) -> Database:
        database = Database(role_url(roles_db, role))
        opened.append(database)
        return database

    yield open_as
    for database in opened:
        database.dispose()


def denied(database: Database, statement: str, **params: object) -> str:
    """Run `statement` as that role; it must be refused for lack of privilege. Returns why."""
    with pytest.raises((ProgrammingError, DBAPIError)) as caught, database.engine.begin() as c:
        c.execute(text(statement), params)
    assert isinstance(caught.value.orig, errors.InsufficientPrivilege), caught.value
    return str(caught.value.orig)


# ---------------------------------------------------------------- set-up


def test_migrations_run_as_the_owner_who_owns_everything(roles_db, as_role):
    owner = as_role("kyc_owner")
    with owner.session() as session:
        owners = dict(
            session.execute(
                text("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'")
            ).all()
        )
        revision = session.scalar(text("SELECT version_num FROM alembic_version"))
    assert owners == dict.fromkeys(
        [
            "alembic_version",
            "verifications",
            "verification_transitions",
            "event_outbox",
            "verification_actions",
        ],
        "kyc_owner",
    )
    assert revision == "0007"


def test_the_init_script_is_idempotent_and_needs_every_password(roles_db):
    assert run_init(roles_db).returncode == 0  # a second run changes nothing, fails nothing
    missing = run_init(roles_db, KYC_DB_APP_PASSWORD="")
    assert missing.returncode != 0 and "set KYC_DB_APP_PASSWORD" in missing.stderr
    assert PASSWORDS["KYC_DB_OWNER_PASSWORD"] not in missing.stderr + missing.stdout


def test_roles_cannot_grow_their_own_powers(roles_db):
    with psycopg.connect(conninfo(roles_db)) as conn:
        rows = conn.execute(
            "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls "
            "FROM pg_roles WHERE rolname LIKE 'kyc\\_%'"
        ).fetchall()
    assert sorted(rows) == [
        ("kyc_app", False, False, False, False),
        ("kyc_owner", False, False, False, False),
        ("kyc_worker", False, False, False, False),
    ]


def test_other_roles_cannot_even_connect(roles_db, postgres_server):
    with psycopg.connect(conninfo(roles_db), autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS kyc_stranger")
        conn.execute("CREATE ROLE kyc_stranger LOGIN")
    try:
        stranger = make_url(roles_db).set(username="kyc_stranger", password=None)
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            psycopg.connect(conninfo(stranger.render_as_string(hide_password=False))).close()
    finally:
        with psycopg.connect(conninfo(roles_db), autocommit=True) as conn:
            conn.execute("DROP ROLE kyc_stranger")


# ---------------------------------------------------------------- kyc_app


def test_the_app_role_can_track_idempotently(as_role):
    app = as_role("kyc_app")
    first = track_verification(app, "gu1", "app-track-1")
    again = track_verification(app, "gu1", "app-track-1")
    assert first.created and first.status == "pending"
    assert (again.verification_id, again.created) == (first.verification_id, False)
    predicate = track_verification(app, "predicate", PREDICATE_ID.upper(), "business")
    assert predicate.created
    with pytest.raises(TrackingConflictError, match="already tracked as type 'business'"):
        track_verification(app, "predicate", PREDICATE_ID, "individual")
    with as_role("kyc_owner").session() as session:
        row = session.get(Verification, first.verification_id)
    assert row is not None
    assert (row.status, row.version, row.poll_attempts, row.total_polls) == ("pending", 1, 0, 0)
    assert row.next_poll_at == row.created_at == row.status_since == row.polling_since
    assert abs((row.created_at - utcnow()).total_seconds()) < 60  # the database's clock


def test_the_app_role_cannot_update_a_verification(as_role):
    app = as_role("kyc_app")
    tracked = track_verification(app, "notus", "app-no-update")
    why = denied(
        app,
        "UPDATE verifications SET status = 'approved', next_poll_at = NULL WHERE id = :id",
        id=tracked.verification_id,
    )
    assert "verifications" in why
    with as_role("kyc_owner").session() as session:
        assert session.get(Verification, tracked.verification_id).status == "pending"


def test_the_app_role_cannot_read_results_or_anything_else(as_role):
    app = as_role("kyc_app")
    track_verification(app, "notus", "app-no-read")
    denied(app, "SELECT result FROM verifications")
    denied(app, "SELECT id, status FROM verifications")
    denied(app, "SELECT payload FROM event_outbox")
    denied(app, "SELECT * FROM verification_transitions")
    denied(app, "SELECT version_num FROM alembic_version")


def test_the_app_role_cannot_forge_rows_or_events(as_role):
    app = as_role("kyc_app")
    before = count(as_role("kyc_owner"))
    denied(
        app,
        "INSERT INTO verifications (provider, external_id, status, poll_attempts, error_count,"
        " permanent_error_count, total_polls, version, created_at, updated_at)"
        " VALUES ('gu1', 'forged', 'approved', 0, 0, 0, 0, 1, now(), now())",
    )
    denied(
        app,
        "INSERT INTO event_outbox (event_id, event_type, verification_id, payload, created_at,"
        " publish_attempts) VALUES ('e', 't', 1, '{}', now(), 0)",
    )
    denied(app, "DELETE FROM verifications")
    denied(app, "TRUNCATE verifications")
    denied(app, "CREATE TABLE app_owned (id int)")
    denied(app, "CREATE TEMP TABLE app_temp (id int)")
    assert count(as_role("kyc_owner")) == before


def test_the_tracking_function_bounds_what_it_stores(as_role):
    """Called without the Python layer, the function still refuses what tracking refuses."""
    app = as_role("kyc_app")
    before = count(as_role("kyc_owner"))
    for provider, external_id, vtype in [
        ("gu1", "a/../b", None),
        ("gu1", "x" * 129, None),
        ("gu1", " spaced", None),
        ("gu1", None, None),
        ("GU1;", "ok", None),
        ("gu1", "ok", "Bad Type"),
    ]:
        with pytest.raises(DBAPIError) as caught, app.engine.begin() as connection:
            connection.execute(
                text("SELECT * FROM kyc_track_verification(:p, :e, :t)"),
                {"p": provider, "e": external_id, "t": vtype},
            )
        assert isinstance(caught.value.orig, errors.InvalidParameterValue)
    assert count(as_role("kyc_owner")) == before


def test_nobody_else_may_call_the_tracking_function(roles_db):
    with psycopg.connect(conninfo(roles_db), autocommit=True) as conn:
        granted = conn.execute(
            "SELECT grantee FROM information_schema.role_routine_grants "
            "WHERE routine_name = 'kyc_track_verification' AND privilege_type = 'EXECUTE'"
        ).fetchall()
        public = conn.execute(
            "SELECT has_function_privilege('public', "
            "'kyc_track_verification(text, text, text)', 'EXECUTE')"
        ).fetchone()
    assert {row[0] for row in granted} == {"kyc_owner", "kyc_worker", "kyc_app"}
    assert public == (False,)


# ---------------------------------------------------------------- kyc_worker


def count(database: Database) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).select_from(Verification)) or 0)


def test_the_worker_role_runs_the_poll_engine_store_and_the_relay(as_role, redis_url):
    import redis

    worker = as_role("kyc_worker")
    tracked = track_verification(as_role("kyc_app"), "notus", "worker-poll-1")
    clock = FakeClock(utcnow() + timedelta(minutes=1))
    store = SqlStore(worker)
    claimed = store.claim_due("notus", now=clock(), limit=100, lease_seconds=60)
    assert tracked.verification_id in claimed
    engine = PollEngine(
        store,
        {"notus": ScriptedAdapter("notus", [result("approved")])},
        transport=NO_TRANSPORT,
        policy=PollPolicy(),
        runner=run_coroutine,
        clock=clock,
        rng=random.Random(1),
    )
    report = engine.poll_batch([tracked.verification_id])  # load + SqlStore.apply
    assert report.transitions == 1
    client = redis.Redis.from_url(redis_url)
    try:
        relay = OutboxRelay(
            worker, client, "roles.test.events", dedupe_ttl=60, signer=session_signer()
        )
        assert relay.relay_all().published >= 1
        assert client.xlen("roles.test.events.stream") >= 1
    finally:
        client.close()
    with worker.session() as session:
        row = session.get(Verification, tracked.verification_id)  # the worker reads `result`
        assert row is not None and row.status == "approved" and row.result is not None
        assert (
            session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.published_at.is_(None))
            )
            == 0
        )
    # Retention deletes outbox rows and rewrites payloads: DELETE and UPDATE.
    Retention(worker, outbox_max_age_seconds=1e-6, payload_max_age_seconds=1e-6).run()


def test_the_worker_role_cannot_change_the_schema(as_role):
    worker = as_role("kyc_worker")
    denied(worker, "CREATE TABLE worker_owned (id int)")
    denied(worker, "ALTER TABLE verifications ADD COLUMN sneaky text")
    denied(worker, "DROP TABLE event_outbox")
    denied(worker, "CREATE INDEX worker_index ON verifications (provider)")
    denied(worker, "TRUNCATE verification_transitions")
    denied(worker, "CREATE TEMP TABLE worker_temp (id int)")
    denied(worker, "UPDATE alembic_version SET version_num = '9999'")
    denied(worker, "CREATE FUNCTION worker_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    with worker.session() as session:  # health checks read the revision
        assert session.scalar(text("SELECT version_num FROM alembic_version")) == "0007"


def test_tables_a_later_migration_creates_are_the_workers_and_not_the_apps(as_role):
    with as_role("kyc_owner").engine.begin() as connection:
        connection.execute(text("CREATE TABLE later_table (id bigserial PRIMARY KEY, v int)"))
    try:
        with as_role("kyc_worker").engine.begin() as connection:
            connection.execute(text("INSERT INTO later_table (v) VALUES (1)"))
            assert connection.scalar(text("SELECT count(*) FROM later_table")) == 1
        denied(as_role("kyc_app"), "SELECT * FROM later_table")
    finally:
        with as_role("kyc_owner").engine.begin() as connection:
            connection.execute(text("DROP TABLE later_table"))
