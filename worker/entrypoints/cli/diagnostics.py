"""`kyc-poller` commands that look at the fleet's plumbing: outbox, doctor."""

from __future__ import annotations

import click

from models import utcnow
from worker.domain.durations import format_span
from worker.entrypoints.cli.base import (
    EXIT_FAILED,
    database,
    emit,
    exit_with,
    json_option,
    services,
    table,
    when,
)
from worker.services import admin, checks


@click.command()
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
    with services() as runtime:
        backlog = admin.outbox_backlog(database(runtime), show)
    if as_json:
        emit(backlog.to_json(now))
        return
    if backlog.unpublished == 0:
        click.echo("outbox empty: every event is published")
        return
    age = backlog.age_seconds(now)
    click.echo(
        f"{backlog.unpublished} event(s) waiting to be published; oldest "
        f"{format_span(age or 0)} old; {backlog.failing} with a failed publish attempt"
    )
    if backlog.oldest:
        table(
            ["outbox id", "verification", "provider", "to", "created", "attempts", "last error"],
            [
                [
                    str(e.outbox_id),
                    str(e.verification_id),
                    e.provider or "-",
                    e.to_status or "-",
                    when(e.created_at, now),
                    str(e.publish_attempts),
                    (e.last_error or "-")[:80],
                ]
                for e in backlog.oldest
            ],
        )


@click.command()
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
    report = checks.doctor(timeout=timeout)
    if as_json:
        emit(report.to_json())
    else:
        marks = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "skip": "skip"}
        width = max(len(check.name) for check in report.checks)
        for check in report.checks:
            click.echo(f"{marks[str(check.status)]:<5} {check.name:<{width}}  {check.detail}")
        click.echo("all checks passed" if report.ok else "some checks FAILED", err=True)
    if not report.ok:
        exit_with(EXIT_FAILED)


COMMANDS = (outbox, doctor)
