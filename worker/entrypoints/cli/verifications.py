"""`kyc-poller` commands about verifications: track, status, history, list, retry, poll-now."""

from __future__ import annotations

from datetime import timedelta

import click

from models import utcnow
from worker.adapters.celery_queue import CeleryPollQueue
from worker.adapters.registry import PROVIDER_NAMES
from worker.config import POLL_QUEUE
from worker.domain.durations import format_span
from worker.domain.errors import ErrorCode, KycPollerError, RequestRejected
from worker.domain.redaction import redact_url
from worker.domain.statuses import VerificationStatus
from worker.entrypoints.cli.base import (
    EXIT_FAILED,
    EXIT_USAGE,
    CliError,
    Duration,
    canonical,
    database,
    emit,
    json_option,
    load_settings,
    not_tracked,
    provider_argument,
    require_database,
    services,
    table,
    when,
)
from worker.services import admin, timeline


@click.command()
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
    from worker.api.client import KycClient

    settings = load_settings()
    canonical_id = canonical(provider, external_id)
    require_database(settings.database_url)
    client = KycClient(
        settings.database_url,
        retry_seconds=wait,
        max_open_per_provider={
            name: p.max_open_verifications for name, p in settings.providers.items()
        },
    )
    try:
        tracked = client.track(provider, external_id, verification_type)
    except RequestRejected as exc:
        raise CliError(f"refused: {exc}", EXIT_USAGE) from None
    except KycPollerError as exc:  # StorageUnavailableError, StorageError: details withheld
        raise CliError(f"not stored: {exc}", EXIT_FAILED) from None
    finally:
        client.close()
    if as_json:
        emit(
            {
                "verification_id": tracked.verification_id,
                "created": tracked.created,
                "status": str(tracked.status),
                "provider": provider,
                "external_id": canonical_id,
            }
        )
        return
    how = "now tracked" if tracked.created else "already tracked"
    click.echo(
        f"{tracked.verification_id}\t{provider} {canonical_id}: {how} (status {tracked.status})"
    )


@click.command()
@provider_argument
@click.argument("external_id", metavar="ID")
@json_option
def status(provider: str, external_id: str, as_json: bool) -> None:
    """Current state of one verification: status, counters, last error, next poll."""
    canonical_id = canonical(provider, external_id)
    with services() as runtime:
        view = admin.get_verification(database(runtime), provider, canonical_id)
    if view is None:
        not_tracked(provider, canonical_id)
    if as_json:
        emit(view.to_json())
        return
    now = utcnow()
    provider_status = f" (provider says {view.provider_status!r})" if view.provider_status else ""
    if view.watched:
        next_poll = f"{when(view.next_poll_at, now)} (decided; checked until re-verification)"
    elif view.terminal:
        next_poll = "- (terminal: not polled any more)"
    elif view.next_poll_at is None:
        next_poll = "- (not scheduled)"
    elif view.next_poll_at <= now:
        next_poll = f"{when(view.next_poll_at, now)}: due at the next sweep"
    else:
        next_poll = when(view.next_poll_at, now)
    error = "-"
    if view.last_error_code or view.last_error:
        error = f"{view.last_error_code or '?'}: {view.last_error or ''}".rstrip(": ")
    lines = [
        ("verification", f"{view.verification_id}  {view.provider} {view.external_id}"),
        ("type", view.verification_type or "-"),
        ("status", f"{view.status}{provider_status}"),
        ("in status since", when(view.in_status_since, now)),
        ("next poll", next_poll),
        ("last polled", when(view.last_polled_at, now)),
        (
            "polls",
            f"{view.total_polls} in all, {view.poll_attempts} since the status changed; "
            f"{view.error_count} failed in a row ({view.permanent_error_count} permanent)",
        ),
        ("last error", error),
        ("tracked", when(view.created_at, now)),
        ("polling since", when(view.polling_since, now)),
        ("finished", when(view.finished_at, now)),
        ("version", str(view.version)),
    ]
    if view.expires_at is not None or view.reverification_event_at is not None:
        lines.append(("approval expires", when(view.expires_at, now)))
        lines.append(("reverification", when(view.reverification_event_at, now)))
    if view.last_sync_at is not None:
        lines.append(("last synced", when(view.last_sync_at, now)))
    for label, value in lines:
        click.echo(f"{label:<16} {value}")


@click.command()
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
    """The transitions of one verification, oldest first, with the syncs asked for it."""
    canonical_id = canonical(provider, external_id)
    with services() as runtime:
        db = database(runtime)
        view = admin.get_verification(db, provider, canonical_id)
        if view is None:
            not_tracked(provider, canonical_id)
        entries = timeline.history_with_actions(db, view.verification_id, limit)
    if as_json:
        for item in entries:
            emit({"verification_id": view.verification_id, **item.to_json()})
        return
    click.echo(f"verification {view.verification_id}  {provider} {canonical_id}  now {view.status}")
    if not entries:
        click.echo("no transitions yet")
        return
    rows = []
    for entry in entries:
        at = entry.occurred_at.strftime("%Y-%m-%d %H:%M:%SZ") if entry.occurred_at else "-"
        if entry.transition is not None:
            t = entry.transition
            rows.append(
                [
                    str(t.version),
                    at,
                    t.from_status,
                    t.to_status,
                    t.reason,
                    t.error_code or "-",
                    t.provider_status or "-",
                ]
            )
        else:
            assert entry.action is not None
            a = entry.action
            said = f", {provider} said {a.detail}" if a.detail else ""
            http = f"HTTP {a.http_status}" if a.http_status else "no answer"
            note = f"({a.kind} {a.outcome}: {http}{said})"
            rows.append([str(a.verification_version), at, note, "", "", "", ""])
    table(["version", "occurred at", "from", "to", "reason", "error code", "provider status"], rows)


@click.command(name="list")
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
    type=Duration(),
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
    with services() as runtime:
        listing = admin.list_verifications(database(runtime), filters, now=now)
    shown = len(listing.verifications)
    if shown < listing.total:
        click.echo(f"showing {shown} of {listing.total} (--limit to see more)", err=True)
    if as_json:
        for view in listing.verifications:
            emit(view.to_json())
        return
    if not listing.verifications:
        click.echo("no verification matches")
        return
    rows = []
    for v in listing.verifications:
        since = v.in_status_since
        if v.watched and v.next_poll_at is not None:
            next_poll = f"check in {format_span((v.next_poll_at - now).total_seconds())}"
        elif v.terminal:
            next_poll = "-"
        elif v.next_poll_at is None:
            next_poll = "?"
        elif v.next_poll_at <= now:
            next_poll = "due"
        else:
            next_poll = f"in {format_span((v.next_poll_at - now).total_seconds())}"
        rows.append(
            [
                str(v.verification_id),
                v.provider,
                v.external_id,
                v.status,
                format_span((now - since).total_seconds()) if since else "-",
                next_poll,
                str(v.total_polls),
                v.last_error_code or "-",
            ]
        )
    table(
        ["id", "provider", "external id", "status", "for", "next poll", "polls", "last error"], rows
    )


@click.command()
@provider_argument
@click.argument("external_id", metavar="ID")
@json_option
def retry(provider: str, external_id: str, as_json: bool) -> None:
    """Re-open a failed or timed_out verification (its own transition and event)."""
    from worker.services.operations import reopen

    canonical_id = canonical(provider, external_id)
    with services() as runtime:
        db = database(runtime)
        before = admin.get_verification(db, provider, canonical_id)
        if before is None:
            not_tracked(provider, canonical_id)
        try:
            outcome = reopen(
                db, provider, canonical_id, now=utcnow(), policy=runtime.settings.policy
            )
        except ValueError as exc:  # not failed/timed_out, or it changed meanwhile
            raise CliError(f"not re-opened: {exc}", EXIT_USAGE) from None
    if outcome is None:
        not_tracked(provider, canonical_id)
    verification_id, to_status = outcome
    if as_json:
        emit(
            {
                "verification_id": verification_id,
                "provider": provider,
                "external_id": canonical_id,
                "from_status": before.status,
                "to_status": str(to_status),
            }
        )
        return
    click.echo(
        f"verification {verification_id} ({provider} {canonical_id}) re-opened: "
        f"{before.status} -> {to_status}; polled at the next sweep, its event is in the outbox"
    )


@click.command(name="poll-now")
@provider_argument
@click.argument("external_id", metavar="ID")
@json_option
def poll_now(provider: str, external_id: str, as_json: bool) -> None:
    """Poll one verification within seconds (repeats within 5 s collapse into one poll)."""
    from worker.services.operations import NudgeOutcome, PollNotEnqueued
    from worker.services.operations import poll_now as nudge_poll

    canonical_id = canonical(provider, external_id)
    with services() as runtime:
        settings = runtime.settings
        queue = CeleryPollQueue(
            settings.effective_broker_url, expires_seconds=settings.claim_lease_seconds
        )
        try:
            nudge = nudge_poll(
                database(runtime),
                runtime.redis,
                queue,
                provider,
                canonical_id,
                now=utcnow(),
                lease_seconds=settings.claim_lease_seconds,
            )
        except PollNotEnqueued as exc:
            raise CliError(
                f"verification {exc.verification_id} was claimed for a poll, but the broker at "
                f"{redact_url(settings.effective_broker_url)} did not take the task "
                f"({type(exc.cause).__name__}); it is polled when its claim runs out, in "
                f"{settings.claim_lease_seconds:g}s",
                EXIT_FAILED,
            ) from None
        finally:
            queue.close()
    if nudge.outcome is NudgeOutcome.UNKNOWN:
        not_tracked(provider, canonical_id)
    if nudge.outcome is NudgeOutcome.TERMINAL:
        raise CliError(
            f"verification {nudge.verification_id} is {nudge.status} (terminal): nothing to poll",
            EXIT_USAGE,
        )
    if as_json:
        emit(
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


COMMANDS = (track, status, history, list_, retry, poll_now)
