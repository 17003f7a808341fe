"""What every `kyc-poller` command shares: exit codes, errors, output, parameter types.

Exit codes: 0 done, 1 a check failed or a service could not be reached, 2 bad usage or
a refused request (unknown provider, bad id, nothing to do), 3 verification not found.
Expected failures are `CliError`s: one line on stderr and their exit code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, NoReturn

import click
import redis
from sqlalchemy import exc as sa_exc

from models.db import Database
from worker.adapters.registry import PROVIDER_NAMES
from worker.config import Settings
from worker.domain import durations
from worker.domain.errors import ConfigurationError, RequestRejected, StorageUnavailableError
from worker.domain.redaction import redact_url
from worker.runtime import Runtime
from worker.services import admin
from worker.services.storage_errors import is_transient

EXIT_OK = 0
EXIT_FAILED = 1  # a check failed, a service could not be reached
EXIT_USAGE = 2  # bad usage, or a request refused (unknown provider, bad id, nothing to do)
EXIT_NOT_FOUND = 3  # no such verification

PROG = "kyc-poller"
MIGRATE_HINT = "run `python -m worker.migrate`"


class CliError(Exception):
    """An expected failure: one line on stderr and an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# --------------------------------------------------------------------------- services


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigurationError as exc:
        raise CliError(f"configuration: {exc}", EXIT_USAGE) from None


def _schema_error(exc: sa_exc.SQLAlchemyError) -> bool:
    """A query failed because a table or column is missing: the schema is not this code's."""
    name = type(getattr(exc, "orig", None) or exc).__name__
    text = str(getattr(exc, "orig", None) or "")
    return name in {"UndefinedTable", "UndefinedColumn"} or (
        "no such table" in text or "no such column" in text
    )


@contextmanager
def services() -> Iterator[Runtime]:
    """A Runtime on the configured environment; expected failures become CliErrors."""
    settings = load_settings()
    runtime = Runtime(settings)
    try:
        yield runtime
    except RequestRejected as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except StorageUnavailableError as exc:
        raise CliError(str(exc), EXIT_FAILED) from None
    except sa_exc.SQLAlchemyError as exc:
        name = type(getattr(exc, "orig", None) or exc).__name__
        if _schema_error(exc):
            raise CliError(
                f"the database has no kyc-poller schema (or an old one): {MIGRATE_HINT} "
                "(see `kyc-poller doctor`)",
                EXIT_FAILED,
            ) from None
        what = "unavailable" if is_transient(exc) else "error"
        raise CliError(
            f"database {redact_url(settings.database_url)} {what} ({name})", EXIT_FAILED
        ) from None
    except redis.RedisError as exc:
        raise CliError(
            f"cannot reach Redis at {redact_url(settings.redis_url)} ({type(exc).__name__})",
            EXIT_FAILED,
        ) from None
    finally:
        runtime.close()


def require_database(database_url: str) -> None:
    """Refuse to create an empty SQLite file where none is."""
    path = admin.sqlite_path(database_url)
    if path is not None and not path.exists():
        raise CliError(f"no database at {path} (KYC_DATABASE_URL): {MIGRATE_HINT} first")


def database(runtime: Runtime) -> Database:
    """The runtime's database, refusing to create an empty SQLite file where none is."""
    require_database(runtime.settings.database_url)
    return runtime.db


def canonical(provider: str, external_id: str) -> str:
    try:
        return admin.canonical_ref(provider, external_id)
    except RequestRejected as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def not_tracked(provider: str, external_id: str) -> NoReturn:
    raise CliError(f"{provider} verification {external_id!r} is not tracked", EXIT_NOT_FOUND)


# --------------------------------------------------------------------------- output


def emit(document: Any) -> None:
    """One JSON document on one line (`--json`)."""
    click.echo(json.dumps(document, sort_keys=True, default=str))


def exit_with(code: int) -> NoReturn:
    raise click.exceptions.Exit(code)


def when(moment: datetime | None, now: datetime) -> str:
    """`2026-11-23 12:00:00Z (in 5m07s)`, or `-`."""
    if moment is None:
        return "-"
    delta = (moment - now).total_seconds()
    span = durations.format_span(delta)
    relative = "now" if abs(delta) < 1 else (f"in {span}" if delta > 0 else f"{span} ago")
    return f"{moment.strftime('%Y-%m-%d %H:%M:%SZ')} ({relative})"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


# --------------------------------------------------------------------------- parameters


class Duration(click.ParamType[timedelta]):
    """90s, 30m, 2h, 1d, 1h30m (`worker.domain.durations.parse_duration`)."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return durations.parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Since(click.ParamType[datetime]):
    """A duration back from now (15m) or an ISO 8601 time with a zone."""

    name = "time"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        from models import utcnow

        try:
            return durations.parse_since(str(value), utcnow())
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Machine-readable output (JSON; lists: JSON lines)."
)
provider_argument = click.argument(
    "provider", type=click.Choice(PROVIDER_NAMES), metavar="PROVIDER"
)
