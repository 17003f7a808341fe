"""What the `kyc-poller` CLI reads: verifications, their history, the outbox, and `doctor`.

Everything here is read-only. Queries are bounded (a `limit` on every list) and
return plain dataclasses with a `to_json()` for `--json`. Ids are taken in their
canonical form (`canonical_ref`), exactly as tracking stores them.

`run_doctor` checks what a worker needs: its configuration loads, the database is
reachable and at the migrations' head revision, Redis answers PING, and every
configured provider answers a status request for a made-up id. Its texts never
hold a credential, a password in a URL or a provider's response body.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import redis
from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from models import OutboxEvent, Transition, Verification
from models.db import Database, create_db_engine
from worker.adapters.contract import ProviderSettings
from worker.adapters.registry import PROVIDERS, adapter_class, build_adapter
from worker.adapters.transport import TransportLimits, fetch_once
from worker.domain.errors import (
    ConfigurationError,
    ErrorCode,
    InvalidExternalIdError,
    ProviderError,
)
from worker.domain.statuses import TERMINAL_STATUSES, VerificationStatus

MAX_LIMIT = 1000
DEFAULT_LIST_LIMIT = 50


# --------------------------------------------------------------------------- helpers


def canonical_ref(provider: str, external_id: str) -> str:
    """The id as tracking stores it; RequestRejected (unknown provider, hostile id) if none."""
    return adapter_class(provider).canonical_id(external_id)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `2h`, `1d`, `1w`, or combinations such as `1h30m`; ValueError if not."""
    compact = text.strip().lower().replace(" ", "")
    if not compact or _DURATION_PART.sub("", compact):
        raise ValueError(f"not a duration: {text[:40]!r} (expected e.g. 90s, 30m, 2h, 1d or 1h30m)")
    seconds = sum(
        float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(compact)
    )
    if seconds <= 0 or seconds > 3650 * 86400:
        raise ValueError(f"duration out of range: {text[:40]!r}")
    return timedelta(seconds=seconds)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def redact_url(url: str) -> str:
    """`url` with any password (and user info that could be a token) replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparsable URL)"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    user = parts.username or ""
    auth = f"{user}:***@" if parts.password is not None else "***@"
    netloc = auth + host + (f":{port}" if port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def provider_host(base_url: str) -> str:
    """scheme://host[:port] of a provider's base URL: no user info, path or query."""
    try:
        parts = urlsplit(base_url.strip())
        port = parts.port
    except ValueError:
        return "(unparsable URL)"
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    try:
        url = make_url(database_url)
    except sa_exc.ArgumentError:
        return None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(str(url.database))


# --------------------------------------------------------------------------- verifications


@dataclass(frozen=True)
class VerificationView:
    verification_id: int
    provider: str
    external_id: str
    verification_type: str | None
    status: str
    provider_status: str | None
    version: int
    total_polls: int
    poll_attempts: int
    error_count: int
    permanent_error_count: int
    last_error_code: str | None
    last_error: str | None
    created_at: datetime | None
    updated_at: datetime | None
    status_since: datetime | None
    polling_since: datetime | None
    last_polled_at: datetime | None
    next_poll_at: datetime | None
    finished_at: datetime | None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def in_status_since(self) -> datetime | None:
        return self.status_since or self.created_at

    @classmethod
    def of(cls, row: Verification) -> VerificationView:
        return cls(
            verification_id=row.id,
            provider=row.provider,
            external_id=row.external_id,
            verification_type=row.verification_type,
            status=str(row.status),
            provider_status=row.provider_status,
            version=row.version,
            total_polls=row.total_polls,
            poll_attempts=row.poll_attempts,
            error_count=row.error_count,
            permanent_error_count=row.permanent_error_count,
            last_error_code=None if row.last_error_code is None else str(row.last_error_code),
            last_error=row.last_error,
            created_at=row.created_at,
            updated_at=row.updated_at,
            status_since=row.status_since,
            polling_since=row.polling_since,
            last_polled_at=row.last_polled_at,
            next_poll_at=row.next_poll_at,
            finished_at=row.finished_at,
        )

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            document[item.name] = iso(value) if isinstance(value, datetime) else value
        document["terminal"] = self.terminal
        return document


def get_verification(db: Database, provider: str, external_id: str) -> VerificationView | None:
    """The verification tracked as (provider, id) — the id canonicalized — or None."""
    canonical = canonical_ref(provider, external_id)
    with db.session() as session:
        row = session.scalars(
            select(Verification).where(
                Verification.provider == provider, Verification.external_id == canonical
            )
        ).one_or_none()
        return None if row is None else VerificationView.of(row)


@dataclass(frozen=True)
class TransitionView:
    version: int
    from_status: str
    to_status: str
    provider_status: str | None
    reason: str
    error_code: str | None
    occurred_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "from_status": self.from_status,
            "to_status": self.to_status,
            "provider_status": self.provider_status,
            "reason": self.reason,
            "error_code": self.error_code,
            "occurred_at": iso(self.occurred_at),
        }


def get_history(db: Database, verification_id: int, limit: int = 100) -> list[TransitionView]:
    """The verification's latest `limit` transitions, oldest first."""
    with db.session() as session:
        rows = session.scalars(
            select(Transition)
            .where(Transition.verification_id == verification_id)
            .order_by(Transition.version.desc())
            .limit(max(1, min(limit, MAX_LIMIT)))
        ).all()
        return [
            TransitionView(
                version=row.version,
                from_status=str(row.from_status),
                to_status=str(row.to_status),
                provider_status=row.provider_status,
                reason=str(row.reason),
                error_code=None if row.error_code is None else str(row.error_code),
                occurred_at=row.occurred_at,
            )
            for row in reversed(rows)
        ]


@dataclass(frozen=True)
class ListFilter:
    """`kyc-poller list`: every given filter applies (AND)."""

    provider: str | None = None
    statuses: tuple[VerificationStatus, ...] = ()
    # In a non-terminal status for longer than this.
    stuck_longer_than: timedelta | None = None
    # `failed`, with this code on the row or on the transition that ended it.
    failed_with: ErrorCode | None = None
    # This last_error_code, whatever the status.
    error_code: ErrorCode | None = None
    limit: int = DEFAULT_LIST_LIMIT

    def conditions(self, now: datetime) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.provider is not None:
            where.append(Verification.provider == self.provider)
        if self.statuses:
            where.append(Verification.status.in_([str(s) for s in self.statuses]))
        if self.stuck_longer_than is not None:
            since = func.coalesce(Verification.status_since, Verification.created_at)
            where.append(Verification.status.not_in([str(s) for s in TERMINAL_STATUSES]))
            where.append(since <= now - self.stuck_longer_than)
        if self.failed_with is not None:
            code = str(self.failed_with)
            ending_code = (
                select(Transition.error_code)
                .where(Transition.verification_id == Verification.id)
                .order_by(Transition.version.desc())
                .limit(1)
                .scalar_subquery()
            )
            where.append(Verification.status == str(VerificationStatus.FAILED))
            where.append(or_(Verification.last_error_code == code, ending_code == code))
        if self.error_code is not None:
            where.append(Verification.last_error_code == str(self.error_code))
        return where


@dataclass(frozen=True)
class Listing:
    verifications: list[VerificationView]
    total: int  # how many match, the limit aside


def list_verifications(db: Database, filters: ListFilter, *, now: datetime) -> Listing:
    """Matching verifications, longest in their current status first, at most `limit`."""
    limit = max(1, min(filters.limit, MAX_LIMIT))
    where = and_(true(), *filters.conditions(now))
    since = func.coalesce(Verification.status_since, Verification.created_at)
    with db.session() as session:
        rows = session.scalars(
            select(Verification).where(where).order_by(since, Verification.id).limit(limit)
        ).all()
        total = session.scalar(select(func.count()).select_from(Verification).where(where)) or 0
        return Listing([VerificationView.of(row) for row in rows], int(total))


# --------------------------------------------------------------------------- outbox


@dataclass(frozen=True)
class OutboxEntry:
    outbox_id: int
    event_id: str
    verification_id: int
    provider: str | None
    to_status: str | None
    created_at: datetime | None
    publish_attempts: int
    last_error: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "outbox_id": self.outbox_id,
            "event_id": self.event_id,
            "verification_id": self.verification_id,
            "provider": self.provider,
            "to_status": self.to_status,
            "created_at": iso(self.created_at),
            "publish_attempts": self.publish_attempts,
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class OutboxBacklog:
    unpublished: int
    failing: int  # unpublished rows a publish attempt already failed for
    oldest_created_at: datetime | None
    oldest: list[OutboxEntry] = field(default_factory=list)

    def age_seconds(self, now: datetime) -> float | None:
        if self.oldest_created_at is None:
            return None
        return max((now - self.oldest_created_at).total_seconds(), 0.0)

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "unpublished": self.unpublished,
            "failing": self.failing,
            "oldest_created_at": iso(self.oldest_created_at),
            "oldest_age_seconds": self.age_seconds(now),
            "oldest": [entry.to_json() for entry in self.oldest],
        }


def outbox_backlog(db: Database, show: int = 10) -> OutboxBacklog:
    """The events waiting to be published: how many, since when, the oldest `show` of them."""
    pending = OutboxEvent.published_at.is_(None)
    with db.session() as session:
        count, failing, oldest_at = session.execute(
            select(
                func.count(),
                func.count(OutboxEvent.last_error),
                func.min(OutboxEvent.created_at),
            ).where(pending)
        ).one()
        entries: list[OutboxEntry] = []
        if show > 0 and count:
            for row in session.scalars(
                select(OutboxEvent)
                .where(pending)
                .order_by(OutboxEvent.id)
                .limit(min(show, MAX_LIMIT))
            ):
                payload = row.payload if isinstance(row.payload, dict) else {}
                entries.append(
                    OutboxEntry(
                        outbox_id=row.id,
                        event_id=row.event_id,
                        verification_id=row.verification_id,
                        provider=_text_or_none(payload.get("provider")),
                        to_status=_text_or_none(payload.get("to_status")),
                        created_at=row.created_at,
                        publish_attempts=row.publish_attempts,
                        last_error=row.last_error,
                    )
                )
    return OutboxBacklog(int(count or 0), int(failing or 0), _as_utc(oldest_at), entries)


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _as_utc(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, str):
        try:
            return _as_utc(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


# --------------------------------------------------------------------------- doctor


class CheckStatus(StrEnum):
    OK = "ok"
    WARN = "warn"  # works, but look at it
    FAIL = "fail"
    SKIP = "skip"  # not applicable here (a provider that is not configured)


@dataclass(frozen=True)
class Check:
    name: str
    status: CheckStatus
    detail: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"check": self.name, "status": str(self.status), "detail": self.detail, **self.data}


@dataclass(frozen=True)
class DoctorReport:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(check.status is not CheckStatus.FAIL for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [check.to_json() for check in self.checks]}


# Environment variables whose values are never printed (matched on the name).
_SENSITIVE_NAME = re.compile(r"KEY|SECRET|PASSWORD|PASSPHRASE|TOKEN|PROJECT|SIGN|CREDENTIAL", re.I)
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


class Scrubber:
    """Removes every known secret (and URL user info) from a text before it is printed."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is removed whole.
        self.secrets = sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Scrubber:
        secrets: list[str] = []
        for name, value in env.items():
            if not value:
                continue
            if _SENSITIVE_NAME.search(name):
                secrets.append(value)
                secrets.append(value.strip())
                secrets.append(value.replace("\\n", "\n").strip())
            if "://" in value:
                try:
                    password = urlsplit(value.strip()).password
                except ValueError:
                    password = None
                if password:
                    secrets.append(password)
        return cls(secrets)

    def __call__(self, text: str) -> str:
        text = _URL_USERINFO.sub(lambda m: m["scheme"] + "***@", text)
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def check_configuration(env: Mapping[str, str]) -> tuple[Check, Any]:
    """Does the workers' configuration load? Returns the check and the Settings (or None)."""
    from worker.config import Settings

    try:
        settings = Settings.from_env(env)
    except ConfigurationError as exc:
        return Check("configuration", CheckStatus.FAIL, f"does not load: {exc}"), None
    configured = [name for name, ps in settings.providers.items() if _is_configured(name, ps)]
    detail = (
        f"loads; providers configured: {', '.join(configured)}"
        if configured
        else "loads; no provider is configured (set <PROVIDER>_BASE_URL and credentials)"
    )
    status = CheckStatus.OK if configured else CheckStatus.WARN
    return Check("configuration", status, detail, {"providers_configured": configured}), settings


def check_database(database_url: str, *, timeout: float = 5.0) -> Check:
    """Reachable, and at the revision the migration scripts' head names."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from worker.migrate import alembic_config

    shown = redact_url(database_url)
    try:
        backend = make_url(database_url).get_backend_name()
    except sa_exc.ArgumentError:
        return Check("database", CheckStatus.FAIL, "KYC_DATABASE_URL is not a database URL")
    path = sqlite_path(database_url)
    if path is not None and not path.exists():
        return Check(
            "database",
            CheckStatus.FAIL,
            f"{shown}: the SQLite file does not exist (run `python -m worker.migrate`)",
            {"url": shown},
        )
    heads = sorted(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())
    connect_args = {"connect_timeout": max(1, int(timeout))} if backend == "postgresql" else {}
    try:
        engine = create_db_engine(database_url, connect_args=connect_args)
    except (sa_exc.SQLAlchemyError, ImportError) as exc:  # e.g. its driver is not installed
        return Check(
            "database",
            CheckStatus.FAIL,
            f"{shown}: cannot open ({type(exc).__name__}: is its driver installed?)",
            {"url": shown},
        )
    try:
        with engine.connect() as connection:
            current = sorted(MigrationContext.configure(connection).get_current_heads())
    except sa_exc.SQLAlchemyError as exc:
        name = type(getattr(exc, "orig", None) or exc).__name__
        return Check(
            "database", CheckStatus.FAIL, f"{shown}: cannot connect ({name})", {"url": shown}
        )
    finally:
        engine.dispose()
    data = {"url": shown, "revision": current, "head": heads}
    head_text = ", ".join(heads)
    if current == heads:
        return Check(
            "database",
            CheckStatus.OK,
            f"{shown}: schema at revision {head_text} (the migration scripts' head)",
            data,
        )
    if not current:
        detail = (
            f"{shown}: no schema revision (not migrated); the migration scripts' head is "
            f"{head_text}: run `python -m worker.migrate`"
        )
    else:
        known = _known_revisions(database_url)
        db_text = ", ".join(current)
        if all(revision in known for revision in current):
            detail = (
                f"{shown}: database schema at revision {db_text}, the migration scripts' "
                f"head is {head_text}: run `python -m worker.migrate`"
            )
        else:
            detail = (
                f"{shown}: database schema at revision {db_text}, which these migration "
                f"scripts (head {head_text}) do not know: a newer version migrated it"
            )
    return Check("database", CheckStatus.FAIL, detail, data)


def _known_revisions(database_url: str) -> set[str]:
    from alembic.script import ScriptDirectory

    from worker.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config(database_url))
    return {revision.revision for revision in script.walk_revisions()}


def check_redis(redis_url: str, *, name: str = "redis", timeout: float = 3.0) -> Check:
    shown = redact_url(redis_url)
    try:
        client = redis.Redis.from_url(
            redis_url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
    except ValueError:
        return Check(name, CheckStatus.FAIL, "not a Redis URL (redis://, rediss:// or unix://)")
    try:
        started = time.monotonic()
        client.ping()
        elapsed_ms = (time.monotonic() - started) * 1000
        version = ""
        try:
            info = cast(dict[str, Any], client.info("server"))
            version = str(info.get("redis_version") or "")
        except redis.RedisError:
            pass  # INFO may be renamed or forbidden: PING is what counts
    except redis.RedisError as exc:
        return Check(name, CheckStatus.FAIL, f"{shown}: no answer ({type(exc).__name__})")
    finally:
        client.close()
    detail = f"{shown}: PING answered in {elapsed_ms:.0f} ms" + (
        f" (Redis {version})" if version else ""
    )
    return Check(name, CheckStatus.OK, detail, {"url": shown, "version": version or None})


def check_broker(broker_url: str, redis_url: str) -> Check | None:
    """The Celery broker, when it is not the Redis above (None then)."""
    if not broker_url or broker_url == redis_url:
        return None
    scheme = urlsplit(broker_url).scheme.lower()
    if scheme in {"redis", "rediss", "unix"}:
        return check_redis(broker_url, name="broker")
    return Check("broker", CheckStatus.SKIP, f"{scheme or 'unknown'} broker: not checked by doctor")


# Ids no provider has; the first one the adapter accepts is asked for.
PROBE_IDS = ("kyc-poller-doctor-probe", "00000000-0000-4000-8000-000000000000")
_REACHABLE = frozenset({ErrorCode.NOT_FOUND, ErrorCode.REQUEST_NOT_FOUND})
_REFUSED = frozenset(
    {ErrorCode.AUTH_FAILED, ErrorCode.INVALID_SIGN, ErrorCode.PARTNER_PROJECT_NOT_FOUND}
)
_UNREACHABLE = frozenset({ErrorCode.TIMEOUT, ErrorCode.CONNECTION_ERROR})


def _is_configured(name: str, settings: ProviderSettings) -> bool:
    """Anything set beyond the defaults (a half-configured provider counts: doctor says what)."""
    default = adapter_class(name).settings_type()
    ignored = {"rate_limit", "rate_burst"}
    return any(
        getattr(settings, item.name) != getattr(default, item.name)
        for item in dataclasses.fields(settings)
        if item.name not in ignored
    )


def _probe_id(name: str) -> str:
    cls = adapter_class(name)
    for candidate in PROBE_IDS:
        try:
            return cls.canonical_id(candidate)
        except InvalidExternalIdError:
            continue
    raise RuntimeError(f"no probe id suits {name}")  # a new adapter: add one to PROBE_IDS


async def _probe(name: str, settings: ProviderSettings, limits: TransportLimits) -> Check:
    check_name = f"provider {name}"
    try:
        adapter = build_adapter(name, settings)
    except ConfigurationError as exc:
        return Check(check_name, CheckStatus.FAIL, f"misconfigured: {exc}")
    host = provider_host(settings.base_url)
    data: dict[str, Any] = {"provider": name, "host": host}
    started = time.monotonic()
    try:
        await fetch_once(adapter, _probe_id(name), adapter.default_verification_type, limits)
    except ProviderError as exc:
        elapsed = (time.monotonic() - started) * 1000
        data.update(error_code=str(exc.code), http_status=exc.http_status, ms=round(elapsed))
        http = f", HTTP {exc.http_status}" if exc.http_status else ""
        if exc.code in _REACHABLE:
            return Check(
                check_name,
                CheckStatus.OK,
                f"{host}: reachable; a made-up id was answered not found ({exc.code}{http}) "
                f"in {elapsed:.0f} ms",
                {**data, "reachable": True},
            )
        if exc.code in _REFUSED:
            return Check(
                check_name,
                CheckStatus.FAIL,
                f"{host}: credentials refused ({exc.code}{http}): check {adapter.env_prefix}_*",
                {**data, "reachable": True},
            )
        if exc.code in _UNREACHABLE:
            return Check(
                check_name,
                CheckStatus.FAIL,
                f"{host}: unreachable ({exc.code} after {elapsed:.0f} ms)",
                {**data, "reachable": False},
            )
        if exc.code is ErrorCode.RATE_LIMITED:
            return Check(
                check_name,
                CheckStatus.WARN,
                f"{host}: reachable but rate limiting us ({exc.code}{http})",
                {**data, "reachable": True},
            )
        return Check(
            check_name,
            CheckStatus.FAIL,
            f"{host}: unexpected answer ({exc.code}{http}): check {adapter.env_prefix}_BASE_URL",
            {**data, "reachable": True},
        )
    except Exception as exc:  # a bug in an adapter: say so, keep checking the others
        return Check(check_name, CheckStatus.FAIL, f"{host}: probe failed ({type(exc).__name__})")
    elapsed = (time.monotonic() - started) * 1000
    return Check(
        check_name,
        CheckStatus.OK,
        f"{host}: reachable; answered a status for a made-up id in {elapsed:.0f} ms",
        {**data, "reachable": True, "ms": round(elapsed)},
    )


def check_providers(
    providers: Mapping[str, ProviderSettings], limits: TransportLimits
) -> list[Check]:
    """One status request per configured provider, all at once; the others are skipped."""
    checks: dict[str, Check] = {}
    to_probe: list[tuple[str, ProviderSettings]] = []
    for cls in PROVIDERS:
        settings = providers.get(cls.name)
        if settings is None or not _is_configured(cls.name, settings):
            checks[cls.name] = Check(
                f"provider {cls.name}",
                CheckStatus.SKIP,
                f"not configured ({cls.env_prefix}_BASE_URL and credentials unset)",
                {"provider": cls.name},
            )
        else:
            to_probe.append((cls.name, settings))

    async def probe_all() -> list[Check]:
        return await asyncio.gather(*(_probe(name, ps, limits) for name, ps in to_probe))

    if to_probe:
        for (name, _), check in zip(to_probe, asyncio.run(probe_all()), strict=True):
            checks[name] = check
    return [checks[cls.name] for cls in PROVIDERS]


def run_doctor(env: Mapping[str, str] | None = None, *, timeout: float = 10.0) -> DoctorReport:
    """Every check, each independent of the others' outcome where it can be."""
    env = dict(os.environ if env is None else env)
    scrub = Scrubber.from_env(env)
    config_check, settings = check_configuration(env)
    checks = [config_check]
    if settings is not None:
        checks.append(check_database(settings.database_url, timeout=timeout))
        checks.append(check_redis(settings.redis_url, timeout=min(timeout, 5.0)))
        broker = check_broker(settings.broker_url, settings.redis_url)
        if broker is not None:
            checks.append(broker)
        limits = dataclasses.replace(
            settings.limits,
            deadline=min(settings.limits.deadline, timeout),
            connect_timeout=min(settings.limits.connect_timeout, timeout),
            read_timeout=min(settings.limits.read_timeout, timeout),
        )
        checks += check_providers(settings.providers, limits)
    return DoctorReport([_scrubbed(check, scrub) for check in checks])


def _scrubbed(check: Check, scrub: Scrubber) -> Check:
    return Check(
        scrub(check.name),
        check.status,
        scrub(check.detail),
        {
            key: scrub(value) if isinstance(value, str) else value
            for key, value in check.data.items()
        },
    )


__all__: Sequence[str] = (
    "DEFAULT_LIST_LIMIT",
    "MAX_LIMIT",
    "Check",
    "CheckStatus",
    "DoctorReport",
    "ListFilter",
    "Listing",
    "OutboxBacklog",
    "OutboxEntry",
    "Scrubber",
    "TransitionView",
    "VerificationView",
    "canonical_ref",
    "get_history",
    "get_verification",
    "list_verifications",
    "outbox_backlog",
    "parse_duration",
    "redact_url",
    "run_doctor",
)
