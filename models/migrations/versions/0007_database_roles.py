"""database roles: the tracking function apps call, and the runtime role's grants (PostgreSQL)

deploy/postgres/roles.psql creates three roles (run once by a superuser): kyc_owner
(migrations), kyc_worker (the runtime), kyc_app (apps' tracking). This migration adds
what needs the tables to exist:

- `kyc_track_verification(provider, external_id, verification_type)`: a SECURITY
  DEFINER function (it runs with the owner's rights) that inserts a pending
  verification, or finds the one already tracked, and returns (verification_id,
  created, status, verification_type). Apps get EXECUTE on it and no privilege on
  any table: they cannot write a status, a counter or a time (the function fixes
  them: pending, 0, the database's clock), cannot UPDATE or DELETE, and read
  nothing but the row they name. Column grants would have let an app INSERT
  `status = 'approved'` and SELECT every verification's id and status.
- kyc_worker: DML on the tables that exist now (tables created by the owner later
  are covered by roles.psql's default privileges), the sequences, EXECUTE on the
  function; the schema revision (alembic_version) read-only.

Every grant is made only if its role exists, so a database without the roles (the
embedded setup, tests) migrates the same. The function is created on every
PostgreSQL database: `worker.services.tracking` uses it there. SQLite: nothing.
Tables owned by a role other than the one migrating (a deployment that ran its
migrations as the superuser) must be handed over first:
`REASSIGN OWNED BY <old owner> TO kyc_owner` (as a superuser).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = "kyc_track_verification"
SIGNATURE = f"{FUNCTION}(text, text, text)"
TABLES = ("verifications", "verification_transitions", "event_outbox", "verification_actions")

# The same checks as worker.domain.ids' plain token (and the column widths): the function
# is callable without the Python layer, so it bounds what it stores itself.
# search_path is pinned (SECURITY DEFINER hygiene) and the table schema-qualified.
_CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION {schema}.{function}(
    p_provider text, p_external_id text, p_verification_type text DEFAULT NULL
) RETURNS TABLE (verification_id bigint, created boolean, status text, verification_type text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $body$
#variable_conflict use_column
DECLARE
    now_ timestamptz := statement_timestamp();
BEGIN
    IF p_provider IS NULL OR p_provider !~ '^[a-z0-9_]{{1,32}}$' THEN
        RAISE EXCEPTION 'provider must be 1 to 32 of a-z, 0-9 and _' USING ERRCODE = '22023';
    END IF;
    IF p_external_id IS NULL OR length(p_external_id) > 128
            OR p_external_id !~ '^[A-Za-z0-9][A-Za-z0-9._:-]*$' OR p_external_id LIKE '%..%' THEN
        RAISE EXCEPTION 'external id must be a plain token of at most 128 characters'
            USING ERRCODE = '22023';
    END IF;
    IF p_verification_type IS NOT NULL AND p_verification_type !~ '^[a-z0-9_]{{1,32}}$' THEN
        RAISE EXCEPTION 'verification type must be 1 to 32 of a-z, 0-9 and _'
            USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    INSERT INTO {schema}.verifications AS v (
        provider, external_id, verification_type, status, next_poll_at, status_since,
        polling_since, poll_attempts, error_count, permanent_error_count, total_polls,
        version, created_at, updated_at
    ) VALUES (
        p_provider, p_external_id, p_verification_type, 'pending', now_, now_,
        now_, 0, 0, 0, 0,
        1, now_, now_
    )
    ON CONFLICT (provider, external_id) DO NOTHING
    RETURNING v.id, true, v.status::text, v.verification_type::text;
    IF NOT FOUND THEN
        RETURN QUERY
        SELECT v.id, false, v.status::text, v.verification_type::text
        FROM {schema}.verifications AS v
        WHERE v.provider = p_provider AND v.external_id = p_external_id;
    END IF;
END
$body$
"""


def _role_exists(name: str) -> bool:
    found = op.get_bind().execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name})
    return found.scalar() is not None


def _quoted_schema() -> str:
    bind = op.get_bind()
    schema = bind.execute(text("SELECT current_schema()")).scalar_one()
    return str(bind.dialect.identifier_preparer.quote_identifier(schema))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    schema = _quoted_schema()
    op.execute(_CREATE_FUNCTION.format(schema=schema, function=FUNCTION))
    op.execute(f"REVOKE ALL ON FUNCTION {schema}.{SIGNATURE} FROM PUBLIC")
    for role in ("kyc_app", "kyc_worker"):
        if _role_exists(role):
            op.execute(f"GRANT EXECUTE ON FUNCTION {schema}.{SIGNATURE} TO {role}")
    if _role_exists("kyc_worker"):
        tables = ", ".join(f"{schema}.{table}" for table in TABLES)
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO kyc_worker")
        op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO kyc_worker")
        # Health checks read the revision; only migrations write it.
        op.execute(f"REVOKE ALL ON {schema}.alembic_version FROM kyc_worker")
        op.execute(f"GRANT SELECT ON {schema}.alembic_version TO kyc_worker")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # The grants stay: the roles and their default privileges are roles.psql's, not ours.
    op.execute(f"DROP FUNCTION IF EXISTS {_quoted_schema()}.{SIGNATURE}")
