"""`kyc-poller`: the on-call person's command line (click, which Celery already brings).

It reads the same environment as the workers (`Settings.from_env()`).

    kyc-poller track PROVIDER ID [--type T]     start tracking (prints the verification id)
    kyc-poller status PROVIDER ID               state, counters, last error, next poll
    kyc-poller history PROVIDER ID              its transitions
    kyc-poller list [filters]                   verifications by provider, status, stuck, code
    kyc-poller retry PROVIDER ID                re-open a failed/timed_out verification
    kyc-poller poll-now PROVIDER ID             poll it within seconds
    kyc-poller pause|resume PROVIDER            stop / restart polling a provider fleet-wide
    kyc-poller providers                        each provider's circuit, pause and rate limit
    kyc-poller provider-reset PROVIDER          close its circuit, lift its rate pause
    kyc-poller events [--follow | --since …]    recent events, replay, or tail them live
    kyc-poller outbox                           events waiting to be published
    kyc-poller doctor                           configuration, database, Redis, providers

Every command takes `--json` (one JSON object, or one per line for lists and streams).
Exit codes: 0 done, 1 a check failed or a service could not be reached, 2 bad usage or a
refused request (unknown provider, bad id, nothing to do), 3 verification not found.
Errors go to stderr, one line.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, NoReturn

import click
import redis
from sqlalchemy import exc as sa_exc

from models import utcnow
from models.db import Database
from worker.adapters.registry import PROVIDER_NAMES
from worker.config import POLL_QUEUE, Settings
from worker.domain.errors import (
    ConfigurationError,
    ErrorCode,
    KycPollerError,
    RequestRejected,
    StorageUnavailableError,
)
from worker.domain.statuses import VerificationStatus
from worker.runtime import Runtime
from worker.services import admin
from worker.services.storage_errors import is_transient

EXIT_OK = 0
EXIT_FAILED = 1  # a check failed, a service could not be reached
EXIT_USAGE = 2  # bad usage, or a request refused (unknown provider, bad id, nothing to do)
EXIT_NOT_FOUND = 3  # no such verification

PROG = "kyc-poller"


class CliError(Exception):
    """An expected failure: one line on stderr and an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# --------------------------------------------------------------------------- plumbing


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigurationError as exc:
        raise CliError(f"configuration: {exc}", EXIT_USAGE) from None


def _schema_error(exc: sa_exc.SQLAlchemyError) -> bool:
    name = type(getattr(exc, "orig", None) or exc).__name__
    text = str(getattr(exc, "orig", None) or "")
    return name in {"UndefinedTable", "UndefinedColumn"} or (
        "no such table" in text or "no such column" in text
    )


@contextmanager
def _services() -> Iterator[Runtime]:
    """A Runtime on the configured environment; expected failures become CliErrors."""
    settings = _settings()
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
                "the database has no kyc-poller schema (or an old one): run "
                "`python -m worker.migrate` (see `kyc-poller doctor`)",
                EXIT_FAILED,
            ) from None
        what = "unavailable" if is_transient(exc) else "error"
        raise CliError(
            f"database {admin.redact_url(settings.database_url)} {what} ({name})", EXIT_FAILED
        ) from None
    except redis.RedisError as exc:
        raise CliError(
            f"cannot reach Redis at {admin.redact_url(settings.redis_url)} ({type(exc).__name__})",
            EXIT_FAILED,
        ) from None
    finally:
        runtime.close()


def _db(runtime: Runtime) -> Database:
    """The database, refusing to create an empty SQLite file where none is."""
    path = admin.sqlite_path(runtime.settings.database_url)
    if path is not None and not path.exists():
        raise CliError(
            f"no database at {path} (KYC_DATABASE_URL): run `python -m worker.migrate` first"
        )
    return runtime.db


def _canonical(provider: str, external_id: str) -> str:
    try:
        return admin.canonical_ref(provider, external_id)
    except RequestRejected as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def _not_tracked(provider: str, external_id: str) -> NoReturn:
    raise CliError(f"{provider} verification {external_id!r} is not tracked", EXIT_NOT_FOUND)


def _emit(document: Any) -> None:
    click.echo(json.dumps(document, sort_keys=True, default=str))


def _exit(code: int) -> NoReturn:
    raise click.exceptions.Exit(code)


def _span(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m{int(seconds % 60):02d}s"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h{minutes % 60:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    delta = (moment - now).total_seconds()
    relative = (
        "now" if abs(delta) < 1 else (f"in {_span(delta)}" if delta > 0 else f"{_span(delta)} ago")
    )
    return f"{moment.strftime('%Y-%m-%d %H:%M:%SZ')} ({relative})"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Machine-readable output (JSON; lists: JSON lines)."
)
provider_argument = click.argument(
    "provider", type=click.Choice(PROVIDER_NAMES), metavar="PROVIDER"
)


# --------------------------------------------------------------------------- the commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Operate a kyc-poller fleet (reads the same environment as the workers).

    Exit codes: 0 done; 1 a check failed or a service could not be reached; 2 bad usage
    or a refused request; 3 verification not found.
    """


@cli.command()
@provider_argument
@click.argument("external_id", metavar="ID")
@click.option(
    "--type", "verification_type", help="Verification type (Predicate: individual|business)."
)
@click.option(
    "--wait",
    type=click.FloatRange(0, 600),
    default=5.0,
    show_default=True,
    help="Seconds to keep retrying a database that is down.",
)
@json_option
def track(
    provider: str, external_id: str, verification_type: str | None, wait: float, as_json: bool
) -> None:
    """Start tracking PROVIDER's verification ID (idempotent); prints its verification id."""
    from worker.client import KycClient

    settings = _settings()
    canonical = _canonical(provider, external_id)
    path = admin.sqlite_path(settings.database_url)
    if path is not None and not path.exists():
        raise CliError(
            f"no database at {path} (KYC_DATABASE_URL): run `python -m worker.migrate` first"
        )
    client = KycClient(settings.database_url, retry_seconds=wait)
    try:
        tracked = client.track(provider, external_id, verification_type)
    except RequestRejected as exc:
        raise CliError(f"refused: {exc}", EXIT_USAGE) from None
    except KycPollerError as exc:  # StorageUnavailableError, StorageError: details withheld
        raise CliError(f"not stored: {exc}", EXIT_FAILED) from None
    finally:
        client.close()
    if as_json:
        _emit(
            {
                "verification_id": tracked.verification_id,
                "created": tracked.created,
                "status": str(tracked.status),
                "provider": provider,
                "external_id": canonical,
            }
        )
        return
    how = "now tracked" if tracked.created else "already tracked"
    click.echo(
        f"{tracked.verification_id}\t{provider} {canonical}: {how} (status {tracked.status})"
    )


@cli.command()
@provider_argument
@click.argument("external_id", metavar="ID")
@json_option
def status(provider: str, external_id: str, as_json: bool) -> None:
    """Current state of one verification: status, counters, last error, next poll."""
    canonical = _canonical(provider, external_id)
    with _services() as runtime:
        view = admin.get_verification(_db(runtime), provider, canonical)
    if view is None:
        _not_tracked(provider, canonical)
    if as_json:
        _emit(view.to_json())
        return
    now = utcnow()
    provider_status = f" (provider says {view.provider_status!r})" if view.provider_status else ""
    if view.terminal:
        next_poll = "- (terminal: not polled any more)"
    elif view.next_poll_at is None:
        next_poll = "- (not scheduled)"
    elif view.next_poll_at <= now:
        next_poll = f"{_when(view.next_poll_at, now)}: due at the next sweep"
    else:
        next_poll = _when(view.next_poll_at, now)
    error = "-"
    if view.last_error_code or view.last_error:
        error = f"{view.last_error_code or '?'}: {view.last_error or ''}".rstrip(": ")
    lines = [
        ("verification", f"{view.verification_id}  {view.provider} {view.external_id}"),
        ("type", view.verification_type or "-"),
        ("status", f"{view.status}{provider_status}"),
        ("in status since", _when(view.in_status_since, now)),
        ("next poll", next_poll),
        ("last polled", _when(view.last_polled_at, now)),
        (
            "polls",
            f"{view.total_polls} in all, {view.poll_attempts} since the status changed; "
            f"{view.error_count} failed in a row ({view.permanent_error_count} permanent)",
        ),
        ("last error", error),
        ("tracked", _when(view.created_at, now)),
        ("polling since", _when(view.polling_since, now)),
        ("finished", _when(view.finished_at, now)),
        ("version", str(view.version)),
    ]
    for label, value in lines:
        click.echo(f"{label:<16} {value}")


@cli.command()
@provider_argument
@click.argument("external_id", metavar="ID")
@click.option(
    "--limit",
    type=click.IntRange(1, admin.MAX_LIMIT),
    default=100,
    show_default=True,
    help="The latest this many transitions.",
)
@json_option
def history(provider: str, external_id: str, limit: int, as_json: bool) -> None:
    """The transitions of one verification, oldest first."""
    canonical = _canonical(provider, external_id)
    with _services() as runtime:
        db = _db(runtime)
        view = admin.get_verification(db, provider, canonical)
        if view is None:
            _not_tracked(provider, canonical)
        transitions = admin.get_history(db, view.verification_id, limit)
    if as_json:
        for item in transitions:
            _emit({"verification_id": view.verification_id, **item.to_json()})
        return
    click.echo(f"verification {view.verification_id}  {provider} {canonical}  now {view.status}")
    if not transitions:
        click.echo("no transitions yet")
        return
    _table(
        ["version", "occurred at", "from", "to", "reason", "error code", "provider status"],
        [
            [
                str(t.version),
                t.occurred_at.strftime("%Y-%m-%d %H:%M:%SZ") if t.occurred_at else "-",
                t.from_status,
                t.to_status,
                t.reason,
                t.error_code or "-",
                t.provider_status or "-",
            ]
            for t in transitions
        ],
    )


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> timedelta | None:
    if value is None:
        return None
    try:
        return admin.parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@cli.command(name="list")
@click.option("--provider", type=click.Choice(PROVIDER_NAMES), help="Only this provider's.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in VerificationStatus]),
    help="Only in this status (repeat for several).",
)
@click.option(
    "--stuck-longer-than",
    "stuck",
    metavar="DURATION",
    callback=_duration,
    help="Only those in a non-terminal status for longer than this (90s, 30m, 2h, 1d).",
)
@click.option(
    "--failed-with",
    type=click.Choice([c.value for c in ErrorCode]),
    metavar="CODE",
    help="Only `failed` ones that ended with this error code.",
)
@click.option(
    "--error-code",
    type=click.Choice([c.value for c in ErrorCode]),
    metavar="CODE",
    help="Only those whose last error has this code (any status).",
)
@click.option(
    "--limit",
    type=click.IntRange(1, admin.MAX_LIMIT),
    default=admin.DEFAULT_LIST_LIMIT,
    show_default=True,
    help=f"At most this many (up to {admin.MAX_LIMIT}).",
)
@json_option
def list_(
    provider: str | None,
    statuses: tuple[str, ...],
    stuck: timedelta | None,
    failed_with: str | None,
    error_code: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Verifications matching every filter given, longest in their status first."""
    filters = admin.ListFilter(
        provider=provider,
        statuses=tuple(VerificationStatus(s) for s in statuses),
        stuck_longer_than=stuck,
        failed_with=None if failed_with is None else ErrorCode(failed_with),
        error_code=None if error_code is None else ErrorCode(error_code),
        limit=limit,
    )
    now = utcnow()
    with _services() as runtime:
        listing = admin.list_verifications(_db(runtime), filters, now=now)
    shown = len(listing.verifications)
    if shown < listing.total:
        click.echo(f"showing {shown} of {listing.total} (--limit to see more)", err=True)
    if as_json:
        for view in listing.verifications:
            _emit(view.to_json())
        return
    if not listing.verifications:
        click.echo("no verification matches")
        return
    rows = []
    for v in listing.verifications:
        since = v.in_status_since
        if v.terminal:
            next_poll = "-"
        elif v.next_poll_at is None:
            next_poll = "?"
        elif v.next_poll_at <= now:
            next_poll = "due"
        else:
            next_poll = f"in {_span((v.next_poll_at - now).total_seconds())}"
        rows.append(
            [
                str(v.verification_id),
                v.provider,
                v.external_id,
                v.status,
                _span((now - since).total_seconds()) if since else "-",
                next_poll,
                str(v.total_polls),
                v.last_error_code or "-",
            ]
        )
    _table(
        ["id", "provider", "external id", "status", "for", "next poll", "polls", "last error"], rows
    )


@cli.command()
@provider_argument
@click.argument("external_id", metavar="ID")
@json_option
def retry(provider: str, external_id: str, as_json: bool) -> None:
    """Re-open a failed or timed_out verification (its own transition and event)."""
    from worker.services.operations import reopen

    canonical = _canonical(provider, external_id)
    with _services() as runtime:
        db = _db(runtime)
        before = admin.get_verification(db, provider, canonical)
        if before is None:
            _not_tracked(provider, canonical)
        try:
            outcome = reopen(db, provider, canonical, now=utcnow(), policy=runtime.settings.policy)
        except ValueError as exc:  # not failed/timed_out, or it changed meanwhile
            raise CliError(f"not re-opened: {exc}", EXIT_USAGE) from None
    if outcome is None:
        _not_tracked(provider, canonical)
    verification_id, to_status = outcome
    if as_json:
        _emit(
            {
                "verification_id": verification_id,
                "provider": provider,
                "external_id": canonical,
                "from_status": before.status,
                "to_status": str(to_status),
            }
        )
        return
    click.echo(
        f"verification {verification_id} ({provider} {canonical}) re-opened: "
        f"{before.status} -> {to_status}; polled at the next sweep, its event is in the outbox"
    )


def _enqueue_poll(settings: Settings, verification_id: int) -> None:
    """Send kyc.poll_batch([id]) over the broker, by name (the CLI has no task code)."""
    from celery import Celery

    app = Celery("kyc-poller-cli", broker=settings.effective_broker_url, set_as_current=False)
    app.conf.broker_connection_timeout = 5
    try:
        app.send_task(
            "kyc.poll_batch",
            ([verification_id],),
            queue=POLL_QUEUE,
            expires=settings.claim_lease_seconds,
            retry=True,
            retry_policy={
                "max_retries": 2,
                "interval_start": 0,
                "interval_step": 0.5,
                "interval_max": 1,
            },
        )
    finally:
        app.close()


@cli.command(name="poll-now")
@provider_argument
@click.argument("external_id", metavar="ID")
@json_option
def poll_now(provider: str, external_id: str, as_json: bool) -> None:
    """Poll one verification within seconds (repeats within 5 s collapse into one poll)."""
    from worker.services.operations import NudgeOutcome
    from worker.services.operations import poll_now as nudge_poll

    canonical = _canonical(provider, external_id)
    with _services() as runtime:
        settings = runtime.settings
        nudge = nudge_poll(
            _db(runtime),
            runtime.redis,
            provider,
            canonical,
            now=utcnow(),
            lease_seconds=settings.claim_lease_seconds,
        )
    if nudge.outcome is NudgeOutcome.UNKNOWN:
        _not_tracked(provider, canonical)
    if nudge.outcome is NudgeOutcome.TERMINAL:
        raise CliError(
            f"verification {nudge.verification_id} is {nudge.status} (terminal): nothing to poll",
            EXIT_USAGE,
        )
    if nudge.outcome is NudgeOutcome.SCHEDULED:
        assert nudge.verification_id is not None
        try:
            _enqueue_poll(settings, nudge.verification_id)
        except Exception as exc:  # kombu's OperationalError and friends
            raise CliError(
                f"verification {nudge.verification_id} was claimed for a poll, but the broker at "
                f"{admin.redact_url(settings.effective_broker_url)} did not take the task "
                f"({type(exc).__name__}); it is polled when its claim runs out, in "
                f"{settings.claim_lease_seconds:g}s",
                EXIT_FAILED,
            ) from None
    if as_json:
        _emit(
            {
                "outcome": str(nudge.outcome),
                "verification_id": nudge.verification_id,
                "status": None if nudge.status is None else str(nudge.status),
            }
        )
        return
    if nudge.outcome is NudgeOutcome.SCHEDULED:
        click.echo(f"verification {nudge.verification_id}: poll enqueued on {POLL_QUEUE}")
    else:
        click.echo(
            f"verification {nudge.verification_id}: a poll was asked for moments ago; "
            "it is on its way"
        )


def _set_pause(provider: str, paused: bool, as_json: bool) -> None:
    with _services() as runtime:
        if paused:
            runtime.governor.pause(provider)
        else:
            runtime.governor.resume(provider)
    if as_json:
        _emit({"provider": provider, "paused_by_operator": paused})
    elif paused:
        click.echo(
            f"{provider}: paused fleet-wide; nothing is claimed or polled until "
            f"`{PROG} resume {provider}`"
        )
    else:
        click.echo(f"{provider}: resumed; its due verifications are polled at the next sweep")


@cli.command()
@provider_argument
@json_option
def pause(provider: str, as_json: bool) -> None:
    """Stop polling PROVIDER fleet-wide (its verifications stay due) until `resume`."""
    _set_pause(provider, True, as_json)


@cli.command()
@provider_argument
@json_option
def resume(provider: str, as_json: bool) -> None:
    """Lift an operator's pause on PROVIDER."""
    _set_pause(provider, False, as_json)


@cli.command()
@json_option
def providers(as_json: bool) -> None:
    """Circuit breaker, pause and rate limit of every provider, fleet-wide."""
    with _services() as runtime:
        configured = set(runtime.adapters)
        statuses = [runtime.governor.status(name) for name in PROVIDER_NAMES]
    if as_json:
        for item in statuses:
            record = asdict(item)
            record["configured"] = item.provider in configured
            _emit(record)
        return
    click.echo(
        f"{'provider':<10} {'configured':<10} {'circuit':<10} {'open for':>9} "
        f"{'faults':>6} {'ok':>6} {'paused':>7} {'operator':>8} {'rate/s':>7} {'burst':>6}"
    )
    for s in statuses:
        rate = f"{s.rate.per_second:g}" if s.rate.per_second > 0 else "-"
        click.echo(
            f"{s.provider:<10} {'yes' if s.provider in configured else 'no':<10} "
            f"{s.state.value:<10} {s.open_for_seconds:>8.1f}s {s.window_faults:>6} "
            f"{s.window_successes:>6} {s.paused_for_seconds:>6.1f}s "
            f"{'paused' if s.paused_by_operator else '-':>8} {rate:>7} {s.rate.burst:>6}"
        )


@cli.command(name="provider-reset")
@provider_argument
@json_option
def provider_reset(provider: str, as_json: bool) -> None:
    """Close PROVIDER's circuit and lift its rate pause now (an operator's pause stays)."""
    with _services() as runtime:
        runtime.governor.reset(provider)
    if as_json:
        _emit({"provider": provider, "circuit": "closed"})
    else:
        click.echo(f"{provider}: circuit closed, rate pause lifted")


# --------------------------------------------------------------------------- events


def _parse_since(text: str, now: datetime) -> datetime:
    """A duration back from now (`15m`) or an ISO 8601 time with a zone."""
    try:
        return now - admin.parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text[:40]!r} is neither a duration (15m, 2h) nor an ISO 8601 time "
            "(2026-11-23T12:00:00Z)",
            param_hint="'--since'",
        ) from None
    if moment.tzinfo is None:
        raise click.BadParameter(
            f"{text[:40]!r} has no time zone (add Z or +00:00)", param_hint="'--since'"
        )
    return moment


def _event_line(event: dict[str, Any], stream_id: str | None) -> str:
    error = f" {event['error_code']}" if event.get("error_code") else ""
    related = (
        f" -> tracks {event['related_external_id']}" if event.get("related_external_id") else ""
    )
    where = f"  [{stream_id}]" if stream_id else ""
    return (
        f"{event.get('occurred_at', '?')}  {event.get('provider', '?')} "
        f"{event.get('external_id', '?')} (#{event.get('verification_id')} "
        f"v{event.get('verification_version', '?')})  {event.get('from_status', '?')} -> "
        f"{event.get('to_status')}  {event.get('reason', '?')}{error}{related}{where}"
    )


@cli.command()
@click.option("--follow", "-f", is_flag=True, help="Keep waiting for new events (Ctrl-C stops).")
@click.option(
    "--from-id", metavar="ID", help="Replay the stream from this entry id (0: the start)."
)
@click.option("--after-id", metavar="ID", help="Replay the stream after this entry id.")
@click.option(
    "--since",
    metavar="TIME",
    help="Replay the stream from this time: ISO 8601 with a zone, or a duration back (15m).",
)
@click.option(
    "--count",
    "-n",
    type=click.IntRange(1, 1_000_000),
    help="Stop after this many events (default: 20 without --follow/replay, else no limit).",
)
@click.option("--provider", type=click.Choice(PROVIDER_NAMES), help="Only this provider's events.")
@click.option("--external-id", metavar="ID", help="Only this verification's (with --provider).")
@click.option("--show-id", is_flag=True, help="JSON: wrap as {stream_id, event} (stream modes).")
@json_option
def events(
    follow: bool,
    from_id: str | None,
    after_id: str | None,
    since: str | None,
    count: int | None,
    provider: str | None,
    external_id: str | None,
    show_id: bool,
    as_json: bool,
) -> None:
    """Recent events (default: the last 20 in the stream), a replay, or a live tail.

    \b
    kyc-poller events                    the last --count events kept in the stream
    kyc-poller events --follow           live, from the pub/sub channel
    kyc-poller events --since 1h         replay the stream from then (add --follow to go on)
    kyc-poller events --from-id 0 -n 5   the stream's first 5 events
    """
    from worker import subscriber

    starts = [
        name
        for name, v in (("--from-id", from_id), ("--after-id", after_id), ("--since", since))
        if v
    ]
    if len(starts) > 1:
        raise click.UsageError(f"give one of {', '.join(starts)}, not several")
    if external_id is not None and provider is None:
        raise click.UsageError("--external-id needs --provider")
    wanted_id = None if external_id is None else _canonical(provider or "", external_id)
    try:
        if from_id is not None:
            subscriber.check_stream_id(from_id)
        if after_id is not None:
            subscriber.check_stream_id(after_id)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=f"'{starts[0]}'") from None
    since_at = None if since is None else _parse_since(since, utcnow())
    if since_at is not None:
        try:
            subscriber.stream_id_at(since_at)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--since'") from None

    settings = _settings()
    stream = settings.effective_events_stream
    block = 1.0
    client = redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=3, socket_timeout=block + 10
    )
    printed = 0

    def wanted(event: dict[str, Any]) -> bool:
        if provider is not None and event.get("provider") != provider:
            return False
        return wanted_id is None or event.get("external_id") == wanted_id

    def show(event: dict[str, Any], stream_id: str | None) -> bool:
        """Print one event; False once --count events were printed."""
        nonlocal printed
        if not wanted(event):
            return True
        if as_json:
            _emit({"stream_id": stream_id, "event": event} if show_id and stream_id else event)
        else:
            click.echo(_event_line(event, stream_id))
        sys.stdout.flush()
        printed += 1
        return count is None or printed < count

    try:
        client.ping()
        if starts:
            for item in subscriber.replay(
                client,
                stream,
                from_id=from_id,
                after_id=after_id,
                since=since_at,
                follow=follow,
                block_seconds=block,
            ):
                if item is not None and not show(item.event, item.stream_id):
                    break
        elif follow:
            if not as_json:
                click.echo(f"following {settings.events_channel} (Ctrl-C to stop)", err=True)
            for event in subscriber.iter_events(client, settings.events_channel):
                if event is not None and not show(event, None):
                    break
        else:
            for stream_id, event in _recent_events(client, stream, count or 20, wanted):
                show(event, stream_id)
        if printed == 0 and not as_json and not follow:
            matching = "matching " if provider else ""
            click.echo(f"no {matching}events in {stream}", err=True)
    except KeyboardInterrupt:
        return
    except redis.RedisError as exc:
        raise CliError(
            f"cannot read events from Redis at {admin.redact_url(settings.redis_url)} "
            f"({type(exc).__name__})"
        ) from None
    finally:
        client.close()


def _recent_events(
    client: redis.Redis,
    stream: str,
    count: int,
    wanted: Callable[[dict[str, Any]], bool],
    *,
    page: int = 500,
    scan_limit: int = 100_000,
) -> list[tuple[str, dict[str, Any]]]:
    """The last `count` wanted events of the stream, oldest first (scans at most `scan_limit`)."""
    from worker.subscriber import parse_entry

    found: list[tuple[str, dict[str, Any]]] = []
    upper = "+"
    scanned = 0
    while len(found) < count and scanned < scan_limit:
        entries: Any = client.xrevrange(stream, max=upper, min="-", count=page)
        if not entries:
            break
        for raw_id, fields in entries:
            entry_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            scanned += 1
            event = parse_entry(fields)
            if event is not None and wanted(event):
                found.append((entry_id, event))
                if len(found) >= count:
                    break
        if len(entries) < page:
            break
        last = entries[-1][0]
        upper = "(" + (last.decode() if isinstance(last, bytes) else str(last))
    found.reverse()
    return found


# --------------------------------------------------------------------------- outbox, doctor


@cli.command()
@click.option(
    "--show",
    type=click.IntRange(0, admin.MAX_LIMIT),
    default=10,
    show_default=True,
    help="List this many of the oldest unpublished events.",
)
@json_option
def outbox(show: int, as_json: bool) -> None:
    """Events committed but not yet published to Redis (the relay's backlog)."""
    now = utcnow()
    with _services() as runtime:
        backlog = admin.outbox_backlog(_db(runtime), show)
    if as_json:
        _emit(backlog.to_json(now))
        return
    if backlog.unpublished == 0:
        click.echo("outbox empty: every event is published")
        return
    age = backlog.age_seconds(now)
    click.echo(
        f"{backlog.unpublished} event(s) waiting to be published; oldest "
        f"{_span(age or 0)} old; {backlog.failing} with a failed publish attempt"
    )
    if backlog.oldest:
        _table(
            ["outbox id", "verification", "provider", "to", "created", "attempts", "last error"],
            [
                [
                    str(e.outbox_id),
                    str(e.verification_id),
                    e.provider or "-",
                    e.to_status or "-",
                    _when(e.created_at, now),
                    str(e.publish_attempts),
                    (e.last_error or "-")[:80],
                ]
                for e in backlog.oldest
            ],
        )


@cli.command()
@click.option(
    "--timeout",
    type=click.FloatRange(0.5, 120),
    default=10.0,
    show_default=True,
    help="Longest wait for each service, in seconds.",
)
@json_option
def doctor(timeout: float, as_json: bool) -> None:
    """Check configuration, database schema, Redis and every configured provider.

    Exit 0 when nothing failed, 1 otherwise. Never prints keys, passwords or
    provider answers.
    """
    report = admin.run_doctor(timeout=timeout)
    if as_json:
        _emit(report.to_json())
    else:
        marks = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "skip": "skip"}
        width = max(len(check.name) for check in report.checks)
        for check in report.checks:
            click.echo(f"{marks[str(check.status)]:<5} {check.name:<{width}}  {check.detail}")
        click.echo("all checks passed" if report.ok else "some checks FAILED", err=True)
    if not report.ok:
        _exit(EXIT_FAILED)


# --------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    """`kyc-poller`: run one command and return its exit code (errors: one line on stderr)."""
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None, prog_name=PROG, standalone_mode=False
        )
    except CliError as exc:
        click.echo(f"{PROG}: error: {exc.message}", err=True)
        return exc.code
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            click.echo(exc.format_message(), err=True)
            return EXIT_USAGE
        command = exc.ctx.command_path if exc.ctx is not None else PROG
        message = " ".join(exc.format_message().split())
        click.echo(f"{command}: error: {message} (see `{command} --help`)", err=True)
        return EXIT_USAGE
    except click.ClickException as exc:
        click.echo(f"{PROG}: error: {' '.join(exc.format_message().split())}", err=True)
        return exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo("", err=True)
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more to say, and nothing at exit either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    return result if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
