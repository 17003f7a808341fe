"""`kyc-poller` commands that list what needs a person: unknown status words, re-verifications."""

from __future__ import annotations

from datetime import timedelta

import click

from models import utcnow
from worker.adapters.registry import PROVIDER_NAMES
from worker.domain.durations import format_span
from worker.entrypoints.cli.base import Duration, database, emit, json_option, services, table, when
from worker.services import admin, watchlists


@click.command(name="unknown-statuses")
@click.option("--provider", type=click.Choice(PROVIDER_NAMES), help="Only this provider's.")
@click.option(
    "--examples",
    type=click.IntRange(0, watchlists.MAX_EXAMPLES),
    default=3,
    show_default=True,
    help="Verifications to show per word.",
)
@click.option(
    "--limit",
    type=click.IntRange(1, admin.MAX_LIMIT),
    default=admin.DEFAULT_LIST_LIMIT,
    show_default=True,
    help="At most this many words.",
)
@json_option
def unknown_statuses(provider: str | None, examples: int, limit: int, as_json: bool) -> None:
    """Status words providers send that their tables lack, and the verifications waiting.

    Map a word without a release: KYC_<PROVIDER>_STATUS_MAP_EXTRA="WORD=status,…", then
    restart the workers.
    """
    with services() as runtime:
        words = watchlists.unknown_statuses(
            database(runtime), provider=provider, limit=limit, examples=examples
        )
    if as_json:
        for word in words:
            emit(word.to_json())
        return
    if not words:
        click.echo("no verification waits on an unknown status word")
        return
    now = utcnow()
    table(
        ["provider", "word", "verifications", "last polled", "examples"],
        [
            [
                w.provider,
                repr(w.provider_status),
                str(w.verifications),
                when(w.last_polled_at, now),
                ", ".join(f"{e.verification_id} {e.external_id}" for e in w.examples) or "-",
            ]
            for w in words
        ],
    )


@click.command()
@click.option("--provider", type=click.Choice(PROVIDER_NAMES), help="Only this provider's.")
@click.option(
    "--within",
    type=Duration(),
    default="30d",
    show_default=True,
    help="Also list approvals whose re-verification comes within this long.",
)
@click.option(
    "--limit",
    type=click.IntRange(1, admin.MAX_LIMIT),
    default=admin.DEFAULT_LIST_LIMIT,
    show_default=True,
    help="At most this many per section.",
)
@json_option
def reverifications(provider: str | None, within: timedelta, limit: int, as_json: bool) -> None:
    """Approvals due for re-verification (newest first), and those coming due (soonest first)."""
    now = utcnow()
    with services() as runtime:
        found = watchlists.reverifications(
            database(runtime), now=now, within=within, provider=provider, limit=limit
        )
    if as_json:
        emit(found.to_json())
        return
    sections = (
        ("due", found.due, found.due_total, "event at"),
        (
            f"coming due within {format_span(within.total_seconds())}",
            found.expiring,
            found.expiring_total,
            "expires",
        ),
    )
    for title, entries, total, column in sections:
        click.echo(
            f"{title}: {total}" + (f" (showing {len(entries)})" if len(entries) < total else "")
        )
        if entries:
            table(
                ["id", "provider", "external id", "status", column],
                [
                    [
                        str(e.verification_id),
                        e.provider,
                        e.external_id,
                        e.status,
                        when(e.event_at if e.due else e.expires_at, now),
                    ]
                    for e in entries
                ],
            )


COMMANDS = (unknown_statuses, reverifications)
