"""The schema's revisions: what the migration scripts know, and how a database compares.

One rule, used by the health check and `kyc-poller doctor` alike (`schema_state`):

- **missing**: no `alembic_version` row (never migrated): unusable;
- **behind**: a revision these scripts know, older than their head: unusable;
- **current**: the head: fine;
- **newer**: a revision these scripts do not know. Migrations run before a rollout and
  only add, so code that is still running keeps working with it: usable (doctor says so).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from enum import StrEnum

from alembic.config import Config
from alembic.script import ScriptDirectory

SCHEMA_QUERY = "SELECT version_num FROM alembic_version"


def alembic_config(database_url: str) -> Config:
    """The Alembic configuration for kyc-poller's migrations on `database_url`."""
    config = Config()
    config.set_main_option("script_location", "models:migrations")
    # ConfigParser interpolation: a literal % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@functools.cache
def schema_revisions() -> tuple[str, frozenset[str]]:
    """The scripts' head revision and every revision they know (read once per process)."""
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = scripts.get_current_head()
    assert head is not None, "the migration scripts have a single head"
    return head, frozenset(revision.revision for revision in scripts.walk_revisions())


class SchemaState(StrEnum):
    MISSING = "missing"
    BEHIND = "behind"
    CURRENT = "current"
    NEWER = "newer"

    @property
    def usable(self) -> bool:
        return self in (SchemaState.CURRENT, SchemaState.NEWER)


def schema_state(versions: Sequence[str]) -> SchemaState:
    """Where a database whose `alembic_version` holds `versions` stands (see the module doc)."""
    head, known = schema_revisions()
    if not versions:
        return SchemaState.MISSING
    if head in versions:
        return SchemaState.CURRENT
    if all(version in known for version in versions):
        return SchemaState.BEHIND
    return SchemaState.NEWER


def describe_schema(versions: Sequence[str]) -> str:
    """One line on `schema_state(versions)`, saying what to do when it is unusable."""
    head, _known = schema_revisions()
    state = schema_state(versions)
    found = ", ".join(versions)
    if state is SchemaState.MISSING:
        return "no schema (not migrated): run `python -m worker.migrate`"
    if state is SchemaState.BEHIND:
        return f"schema at revision {found}, this code needs {head}: run `python -m worker.migrate`"
    if state is SchemaState.CURRENT:
        return f"schema at revision {head} (the migration scripts' head)"
    return (
        f"schema at revision {found}, which these migration scripts (head {head}) do not "
        "know: a newer version migrated it; this code keeps working with it (migrations only add)"
    )
