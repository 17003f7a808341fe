"""The one set of checks behind `python -m worker.health` and `kyc-poller doctor`.

Each check answers one question about what a kyc-poller process needs and returns a
`Check` (ok / warn / fail / skip, a sentence, a few facts); none of them writes
anything or creates a missing SQLite file. `run_bounded` runs checks at once, each in
a daemon thread with a deadline, so a hung server cannot hold a health check past its
timeout. The schema rule is `models.schema.schema_state`, the same for both readers.

- `health_checks(settings, timeout)`: what a worker, control worker or beat needs to
  run: its database (with this code's schema, or a newer one) and its broker (and the
  events Redis when that is another server). `health_line` turns them into one line.
- `doctor(env, timeout)`: all of those plus the configuration loading and every
  configured provider answering a status request for a made-up id.

Texts never hold a credential, a password in a URL or a provider's answer: each
check's texts go through `worker.domain.redaction.Scrubber`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import redis
from sqlalchemy import create_engine, inspect, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from models.schema import SCHEMA_QUERY, SchemaState, describe_schema, schema_revisions, schema_state
from worker.adapters.contract import ProviderSettings, TransportLimits
from worker.adapters.registry import PROVIDERS, adapter_class, build_adapter
from worker.adapters.transport import fetch_once
from worker.domain.errors import ConfigurationError, ErrorCode, InvalidExternalIdError
from worker.domain.errors import ProviderError as _ProviderError
from worker.domain.redaction import Scrubber, one_line, redact_url, url_origin

if TYPE_CHECKING:
    from worker.config import Settings

DEFAULT_HEALTH_TIMEOUT_SECONDS = 3.0
MAX_REASON_CHARS = 200


class CheckStatus(StrEnum):
    OK = "ok"
    WARN = "warn"  # works, but look at it
    FAIL = "fail"
    SKIP = "skip"  # not applicable here (a provider that is not configured)


@dataclass(frozen=True)
class Check:
    """One answer. `reason`: the short cause of a failure (the health line shows it)."""

    name: str
    status: CheckStatus
    detail: str
    data: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.status is not CheckStatus.FAIL

    def brief(self) -> str:
        """`database ok (2 ms)` or `database failed (OperationalError: …)`."""
        if self.passed:
            return f"{self.name} ok ({self.seconds * 1000:.0f} ms)"
        return f"{self.name} failed ({self.reason or self.detail})"

    def to_json(self) -> dict[str, Any]:
        return {"check": self.name, "status": str(self.status), "detail": self.detail, **self.data}

    def scrubbed(self, scrub: Scrubber) -> Check:
        return dataclasses.replace(
            self,
            name=scrub(self.name),
            detail=scrub(self.detail),
            reason=one_line(scrub(self.reason), MAX_REASON_CHARS),
            data={k: scrub(v) if isinstance(v, str) else v for k, v in self.data.items()},
        )


@dataclass(frozen=True)
class DoctorReport:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(check.passed for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [check.to_json() for check in self.checks]}


def failure_reason(exc: BaseException) -> str:
    """`Type: first line` of an error; the driver's own when SQLAlchemy wraps one."""
    cause = getattr(exc, "orig", None)
    shown = cause if isinstance(cause, Exception) else exc
    lines = str(shown).strip().splitlines()
    return f"{type(shown).__name__}: {lines[0]}" if lines else type(shown).__name__


# --------------------------------------------------------------------------- the database


def database_check(database_url: str, *, timeout: float = 5.0) -> Check:
    """Reachable, and at a schema this code can use (see `models.schema`).

    SQLite: the file must exist and is opened read-only (nothing is created).
    PostgreSQL: bounded by a connect timeout and a statement timeout.
    """
    shown = redact_url(database_url)
    started = time.perf_counter()

    def done(status: CheckStatus, detail: str, reason: str = "", **data: Any) -> Check:
        return Check(
            "database",
            status,
            f"{shown}: {detail}",
            {"url": shown, **data},
            time.perf_counter() - started,
            reason or detail,
        )

    try:
        parsed = make_url(database_url)
    except sa_exc.ArgumentError:
        return Check("database", CheckStatus.FAIL, "KYC_DATABASE_URL is not a database URL")
    try:
        versions = _schema_versions(parsed, timeout)
    except _NoFile:
        return done(
            CheckStatus.FAIL,
            "the SQLite file does not exist (run `python -m worker.migrate`)",
            "the SQLite file does not exist",
        )
    except (sa_exc.NoSuchModuleError, ImportError) as exc:
        return done(
            CheckStatus.FAIL,
            f"cannot open ({type(exc).__name__}: is its driver installed?)",
        )
    except (sa_exc.SQLAlchemyError, sqlite3.Error, OSError) as exc:
        return done(
            CheckStatus.FAIL,
            f"cannot connect ({failure_reason(exc).split(':')[0]})",
            failure_reason(exc),
        )
    head, _known = schema_revisions()
    state = schema_state(versions)
    status = {
        SchemaState.CURRENT: CheckStatus.OK,
        SchemaState.NEWER: CheckStatus.WARN,
    }.get(state, CheckStatus.FAIL)
    return done(status, describe_schema(versions), revision=sorted(versions), head=[head])


class _NoFile(Exception):
    pass


def _schema_versions(parsed: Any, timeout: float) -> list[str]:
    """The database's `alembic_version` rows (empty when it was never migrated)."""
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ":memory:"
        if database != ":memory:" and not os.path.exists(database):
            raise _NoFile(database)
        target = database if database == ":memory:" else f"file:{database}?mode=ro"
        sqlite = sqlite3.connect(target, uri=database != ":memory:", timeout=timeout)
        try:
            try:
                rows = sqlite.execute(SCHEMA_QUERY).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" not in str(exc):
                    raise
                rows = []
        finally:
            sqlite.close()
        return [str(row[0]) for row in rows]
    connect_args: dict[str, object] = {}
    if parsed.get_backend_name() == "postgresql":
        # libpq counts whole seconds; the statement timeout bounds a server that accepts
        # connections but cannot answer.
        connect_args = {
            "connect_timeout": max(1, math.ceil(timeout)),
            "options": f"-c statement_timeout={max(1, int(timeout * 1000))}",
        }
    engine = create_engine(
        parsed, poolclass=NullPool, connect_args=connect_args, hide_parameters=True
    )
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return []
            return [str(v) for v in connection.execute(text(SCHEMA_QUERY)).scalars()]
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- Redis, broker


def redis_check(redis_url: str, *, name: str = "redis", timeout: float = 3.0) -> Check:
    """PING (and the server's version, when INFO is allowed)."""
    shown = redact_url(redis_url)
    started = time.perf_counter()
    try:
        client = redis.Redis.from_url(
            redis_url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry_on_timeout=False,
        )
    except ValueError:
        return Check(name, CheckStatus.FAIL, "not a Redis URL (redis://, rediss:// or unix://)")
    try:
        if not client.ping():
            raise redis.RedisError("PING was not answered with PONG")
        elapsed = time.perf_counter() - started
        version = ""
        try:
            info = cast(dict[str, Any], client.info("server"))
            version = str(info.get("redis_version") or "")
        except redis.RedisError:
            pass  # INFO may be renamed or forbidden (an ACL user): PING is what counts
    except redis.RedisError as exc:
        return Check(
            name,
            CheckStatus.FAIL,
            f"{shown}: no answer ({type(exc).__name__})",
            {"url": shown},
            time.perf_counter() - started,
            failure_reason(exc),
        )
    finally:
        client.close()
    detail = f"{shown}: PING answered in {elapsed * 1000:.0f} ms" + (
        f" (Redis {version})" if version else ""
    )
    return Check(name, CheckStatus.OK, detail, {"url": shown, "version": version or None}, elapsed)


def broker_check(broker_url: str, *, timeout: float = 3.0) -> Check:
    """The Celery broker: a Redis PING, or a kombu connection for other transports."""
    scheme = urlsplit(broker_url).scheme.lower()
    if scheme in {"redis", "rediss", "unix"}:
        return redis_check(broker_url, name="broker", timeout=timeout)
    shown = redact_url(broker_url)
    started = time.perf_counter()
    from kombu.connection import Connection

    try:
        with Connection(broker_url, connect_timeout=timeout) as connection:  # type: ignore[no-untyped-call]
            connection.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:
        return Check(
            "broker",
            CheckStatus.FAIL,
            f"{shown}: no answer ({type(exc).__name__})",
            {"url": shown},
            time.perf_counter() - started,
            failure_reason(exc),
        )
    elapsed = time.perf_counter() - started
    return Check(
        "broker", CheckStatus.OK, f"{shown}: connected ({scheme})", {"url": shown}, elapsed
    )


def same_server(first: str, second: str) -> bool:
    """Do two Redis URLs name the same server and database?"""
    a, b = urlsplit(first), urlsplit(second)
    return (a.scheme, a.hostname, a.port, a.path) == (b.scheme, b.hostname, b.port, b.path)


# --------------------------------------------------------------------------- configuration


def configuration_check(env: Mapping[str, str]) -> tuple[Check, Settings | None]:
    """Does the workers' configuration load? The check, and the settings (None if not)."""
    from worker.config import Settings

    try:
        settings = Settings.from_env(env)
    except ConfigurationError as exc:
        return Check(
            "configuration", CheckStatus.FAIL, f"does not load: {exc}", reason=str(exc)
        ), None
    configured = [name for name, ps in settings.providers.items() if is_configured(name, ps)]
    detail = (
        f"loads; providers configured: {', '.join(configured)}"
        if configured
        else "loads; no provider is configured (set <PROVIDER>_BASE_URL and credentials)"
    )
    status = CheckStatus.OK if configured else CheckStatus.WARN
    signed = settings.event_signer is not None
    if not signed:
        status = CheckStatus.WARN
        detail += "; events are NOT signed (set KYC_EVENT_SIGNING_KEY): readers drop them"
    data = {"providers_configured": configured, "events_signed": signed}
    return Check("configuration", status, detail, data), settings


def is_configured(name: str, settings: ProviderSettings) -> bool:
    """Anything set beyond the defaults (a half-configured provider counts: doctor says what)."""
    default = adapter_class(name).settings_type()
    ignored = {
        "rate_limit",
        "rate_burst",
        "max_open_verifications",
        "allow_insecure_http",
        "status_map_extra",
    }
    return any(
        getattr(settings, item.name) != getattr(default, item.name)
        for item in dataclasses.fields(settings)
        if item.name not in ignored
    )


# --------------------------------------------------------------------------- providers

# Ids no provider has; the first one the adapter accepts is asked for.
PROBE_IDS = ("kyc-poller-doctor-probe", "00000000-0000-4000-8000-000000000000")
_REACHABLE = frozenset({ErrorCode.NOT_FOUND, ErrorCode.REQUEST_NOT_FOUND})
_REFUSED = frozenset(
    {ErrorCode.AUTH_FAILED, ErrorCode.INVALID_SIGN, ErrorCode.PARTNER_PROJECT_NOT_FOUND}
)
_UNREACHABLE = frozenset({ErrorCode.TIMEOUT, ErrorCode.CONNECTION_ERROR})


def probe_id(name: str) -> str:
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
    host = url_origin(settings.base_url)
    data: dict[str, Any] = {"provider": name, "host": host}
    started = time.monotonic()
    try:
        await fetch_once(adapter, probe_id(name), adapter.default_verification_type, limits)
    except _ProviderError as exc:
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


def provider_checks(
    providers: Mapping[str, ProviderSettings], limits: TransportLimits
) -> list[Check]:
    """One status request per configured provider, all at once; the others are skipped."""
    checks: dict[str, Check] = {}
    to_probe: list[tuple[str, ProviderSettings]] = []
    for cls in PROVIDERS:
        settings = providers.get(cls.name)
        if settings is None or not is_configured(cls.name, settings):
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


# --------------------------------------------------------------------------- running them

CheckFn = Callable[[], Check]


class _Run:
    """One check in a daemon thread: a check stuck past the deadline cannot hold the exit."""

    def __init__(self, name: str, check: CheckFn) -> None:
        self.name = name
        self.check = check
        self.outcome: Check | None = None
        self.started = time.perf_counter()
        self.thread = threading.Thread(target=self._run, name=f"check-{name}", daemon=True)

    def _run(self) -> None:
        try:
            self.outcome = self.check()
        except Exception as exc:  # a check that raised instead of answering: still an answer
            reason = failure_reason(exc)
            self.outcome = Check(
                self.name, CheckStatus.FAIL, f"check failed ({reason})", {}, self._elapsed(), reason
            )

    def _elapsed(self) -> float:
        return time.perf_counter() - self.started

    def result(self, deadline: float) -> Check:
        self.thread.join(max(deadline - time.monotonic(), 0.0))
        if self.outcome is None:
            return Check(self.name, CheckStatus.FAIL, "timed out", {}, self._elapsed(), "timed out")
        return self.outcome


def run_bounded(checks: Sequence[tuple[str, CheckFn]], timeout: float) -> list[Check]:
    """Every check at once, each given `timeout` (and a hard deadline just above it)."""
    runs = [_Run(name, check) for name, check in checks]
    for run in runs:
        run.thread.start()
    deadline = time.monotonic() + timeout + 1.0
    return [run.result(deadline) for run in runs]


def health_checks(
    settings: Settings, timeout: float = DEFAULT_HEALTH_TIMEOUT_SECONDS
) -> list[Check]:
    """What a worker, control worker or beat needs: database, broker (and events Redis)."""
    broker = settings.effective_broker_url
    checks: list[tuple[str, CheckFn]] = [
        ("database", lambda: database_check(settings.database_url, timeout=timeout)),
        ("broker", lambda: broker_check(broker, timeout=timeout)),
    ]
    if not same_server(settings.redis_url, broker):
        checks.append(("redis", lambda: redis_check(settings.redis_url, timeout=timeout)))
    scrub = Scrubber.from_urls([settings.database_url, broker, settings.redis_url])
    return [check.scrubbed(scrub) for check in run_bounded(checks, timeout)]


def health_line(checks: Sequence[Check]) -> str:
    """`healthy: database ok (2 ms), broker ok (1 ms)` or `unhealthy: …`."""
    healthy = all(check.passed for check in checks)
    details = ", ".join(check.brief() for check in checks)
    return f"{'healthy' if healthy else 'unhealthy'}: {details}"


def doctor(env: Mapping[str, str] | None = None, *, timeout: float = 10.0) -> DoctorReport:
    """Every check, each independent of the others' outcome where it can be."""
    env = dict(os.environ if env is None else env)
    scrub = Scrubber.from_env(env)
    config_check, settings = configuration_check(env)
    checks = [config_check]
    if settings is not None:
        bounded: list[tuple[str, CheckFn]] = [
            ("database", lambda: database_check(settings.database_url, timeout=timeout)),
            ("redis", lambda: redis_check(settings.redis_url, timeout=min(timeout, 5.0))),
        ]
        broker = settings.broker_url
        if broker and broker != settings.redis_url:
            if urlsplit(broker).scheme.lower() in {"redis", "rediss", "unix"}:
                bounded.append(("broker", lambda: broker_check(broker, timeout=timeout)))
            else:
                scheme = urlsplit(broker).scheme.lower() or "unknown"
                bounded.append(
                    (
                        "broker",
                        lambda: Check(
                            "broker", CheckStatus.SKIP, f"{scheme} broker: not checked by doctor"
                        ),
                    )
                )
        checks += run_bounded(bounded, timeout)
        limits = dataclasses.replace(
            settings.limits,
            deadline=min(settings.limits.deadline, timeout),
            connect_timeout=min(settings.limits.connect_timeout, timeout),
            read_timeout=min(settings.limits.read_timeout, timeout),
        )
        checks += provider_checks(settings.providers, limits)
    return DoctorReport([check.scrubbed(scrub) for check in checks])
