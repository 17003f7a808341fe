"""`kyc-poller events`: the one event command (and `kyc-events`, its alias for scripts).

Four ways to read (see README, "Delivery guarantees"):

    kyc-poller events                          the last --count events kept in the stream
    kyc-poller events --follow                 live, from the pub/sub channel
    kyc-poller events --since 1h [--follow]    replay the stream from then (--from-id, --after-id)
    kyc-poller events --group G --consumer C   through a consumer group: at least once,
                                               acknowledged after the line is printed

`kyc-events` is `kyc-poller events --json --follow`, with the options it always had
(`--count` there is the most entries per read, `--batch` here; `--no-follow` ends a replay).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import click
import redis

from worker.adapters.registry import PROVIDER_NAMES
from worker.api import events as readers
from worker.domain.cloudevents import DEFAULT_SOURCE, to_cloudevent
from worker.domain.events import stream_for_channel
from worker.domain.redaction import redact_url
from worker.entrypoints.cli.base import (
    EXIT_USAGE,
    CliError,
    Since,
    canonical,
    emit,
    json_option,
    load_settings,
)

DEFAULT_RECENT = 20


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


def _stream_id(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        readers.check_stream_id(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from None
    return value


@click.command()
@click.option(
    "--follow/--no-follow",
    "-f",
    default=False,
    help="Keep waiting for new events (Ctrl-C stops); --no-follow ends a replay once caught up.",
)
@click.option(
    "--from-id",
    metavar="ID",
    callback=_stream_id,
    help="Replay the stream from this entry id (0: the start).",
)
@click.option(
    "--after-id", metavar="ID", callback=_stream_id, help="Replay the stream after this entry id."
)
@click.option(
    "--since",
    metavar="TIME",
    type=Since(),
    help="Replay the stream from this time: ISO 8601 with a zone, or a duration back (15m).",
)
@click.option(
    "--count",
    "-n",
    type=click.IntRange(1, 1_000_000),
    help=f"Stop after this many events (default: {DEFAULT_RECENT} without --follow, a replay "
    "or a group; else no limit).",
)
@click.option("--provider", type=click.Choice(PROVIDER_NAMES), help="Only this provider's events.")
@click.option("--external-id", metavar="ID", help="Only this verification's (with --provider).")
@click.option("--show-id", is_flag=True, help="JSON: wrap as {stream_id, event} (stream modes).")
@click.option("--cloudevents", is_flag=True, help="Print CloudEvents 1.0 (structured JSON).")
@click.option(
    "--source",
    envvar="KYC_EVENTS_SOURCE",
    default=DEFAULT_SOURCE,
    show_default=True,
    help="CloudEvents source attribute (KYC_EVENTS_SOURCE).",
)
@click.option("--group", metavar="NAME", help="Read through this consumer group (at least once).")
@click.option(
    "--consumer",
    metavar="NAME",
    help="This consumer's name in the group: keep it stable, a restarted consumer resumes "
    "its own pending events.",
)
@click.option(
    "--claim-idle",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help=f"Group: take over another consumer's events pending this long "
    f"(default {readers.DEFAULT_CLAIM_IDLE_SECONDS:g}).",
)
@click.option(
    "--batch",
    type=click.IntRange(1, 10_000),
    default=readers.DEFAULT_COUNT,
    show_default=True,
    help="Most stream entries per read.",
)
@click.option(
    "--block",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="Longest wait for new entries per read.",
)
@click.option(
    "--no-verify",
    is_flag=True,
    help="Hand over events without checking their signatures (default: drop unsigned or "
    "forged ones; the keys are KYC_EVENT_VERIFY_KEYS and the signing key's public half).",
)
@click.option("--redis-url", metavar="URL", help="Redis to read (default: KYC_REDIS_URL).")
@click.option("--channel", metavar="NAME", help="Pub/sub channel (default: KYC_EVENTS_CHANNEL).")
@click.option(
    "--stream", metavar="NAME", help="Events stream (default: KYC_EVENTS_STREAM, <channel>.stream)."
)
@json_option
def events(
    follow: bool,
    from_id: str | None,
    after_id: str | None,
    since: datetime | None,
    count: int | None,
    provider: str | None,
    external_id: str | None,
    show_id: bool,
    cloudevents: bool,
    source: str,
    group: str | None,
    consumer: str | None,
    claim_idle: float | None,
    batch: int,
    block: float,
    redis_url: str | None,
    channel: str | None,
    stream: str | None,
    no_verify: bool,
    as_json: bool,
) -> None:
    """Recent events (default: the last 20 in the stream), a replay, a live tail or a group.

    \b
    kyc-poller events                    the last --count events kept in the stream
    kyc-poller events --follow           live, from the pub/sub channel
    kyc-poller events --since 1h         replay the stream from then (add --follow to go on)
    kyc-poller events --from-id 0 -n 5   the stream's first 5 events
    kyc-poller events --group G --consumer C   a consumer group, acknowledged after printing
    """
    starts = [
        name
        for name, v in (("--from-id", from_id), ("--after-id", after_id), ("--since", since))
        if v is not None
    ]
    if len(starts) > 1:
        raise click.UsageError(f"give one of {', '.join(starts)}, not several")
    if external_id is not None and provider is None:
        raise click.UsageError("--external-id needs --provider")
    if consumer and not group:
        raise click.UsageError("--consumer needs --group NAME")
    if group and not consumer:
        raise click.UsageError(
            "--group needs --consumer NAME (a stable name, so a restarted consumer resumes "
            "its own pending events)"
        )
    context = click.get_current_context()
    explicit_no_follow = (
        not follow
        and context.get_parameter_source("follow") is click.core.ParameterSource.COMMANDLINE
    )
    if group and explicit_no_follow:
        raise click.UsageError(
            "--no-follow ends a replay; a consumer group follows the stream (use -n to stop)"
        )
    if claim_idle is not None and not group:
        raise click.UsageError("--claim-idle applies to --group only")
    if show_id and follow and not (starts or group):
        raise click.UsageError("--show-id applies to the stream modes (not the live channel)")
    if cloudevents and not source:
        raise click.UsageError("--source must not be empty")
    wanted_id = None if external_id is None else canonical(provider or "", external_id)

    settings = load_settings()
    if not no_verify and settings.event_verifier is None:
        raise CliError(
            "events are verified before they are shown: set KYC_EVENT_VERIFY_KEYS (the "
            "fleet's public keys) or KYC_EVENT_SIGNING_KEY, or pass --no-verify",
            EXIT_USAGE,
        )
    gate = readers.EventGate(settings.event_verifier, verify=not no_verify)
    url = redis_url or settings.redis_url
    channel = channel or settings.events_channel
    stream = stream or (settings.events_stream or stream_for_channel(channel))
    structured = as_json or cloudevents
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
        if structured:
            document = to_cloudevent(event, source=source) if cloudevents else event
            emit({"stream_id": stream_id, "event": document} if show_id and stream_id else document)
        else:
            click.echo(_event_line(event, stream_id if show_id or starts else None))
        sys.stdout.flush()  # before an ack: a line that never got out is delivered again
        printed += 1
        return count is None or printed < count

    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=block + 10)
    try:
        client.ping()
        if group:
            assert consumer is not None
            _read_group(
                client,
                stream,
                group,
                consumer,
                from_id,
                after_id,
                since,
                batch,
                block,
                claim_idle,
                show,
                gate,
            )
        elif starts:
            for item in readers.replay(
                client,
                stream,
                from_id=from_id,
                after_id=after_id,
                since=since,
                follow=follow,
                count=batch,
                block_seconds=block,
                gate=gate,
            ):
                if item is not None and not show(item.event, item.stream_id):
                    break
        elif follow:
            if not structured:
                click.echo(f"following {channel} (Ctrl-C to stop)", err=True)
            for event in readers.iter_events(client, channel, gate=gate):
                if event is not None and not show(event, None):
                    break
        else:
            recent = recent_events(client, stream, count or DEFAULT_RECENT, wanted, gate=gate)
            for stream_id, event in recent:
                show(event, stream_id)
        if printed == 0 and not structured and not follow and not group:
            matching = "matching " if provider else ""
            click.echo(f"no {matching}events in {stream}", err=True)
    except (KeyboardInterrupt, BrokenPipeError):
        return
    except redis.RedisError as exc:
        raise CliError(
            f"cannot read events from Redis at {redact_url(url)} ({type(exc).__name__}: {exc})"
        ) from None
    finally:
        client.close()
        _say_dropped(gate)


class _Enough(Exception):
    """--count events were printed: the group read stops (the next entry stays pending)."""


def _read_group(
    client: redis.Redis,
    stream: str,
    group: str,
    consumer: str,
    from_id: str | None,
    after_id: str | None,
    since: datetime | None,
    batch: int,
    block: float,
    claim_idle: float | None,
    show: Callable[[dict[str, Any], str | None], bool],
    gate: readers.EventGate,
) -> None:
    start = "$"
    if from_id is not None or after_id is not None or since is not None:
        start = readers.start_after(from_id=from_id, after_id=after_id, since=since)
    reader = readers.GroupConsumer(
        client,
        stream,
        group,
        consumer,
        start_id=start,
        count=batch,
        block_seconds=block,
        claim_idle_seconds=claim_idle or readers.DEFAULT_CLAIM_IDLE_SECONDS,
        gate=gate,
    )
    if not reader.ensure_group() and start != "$":
        click.echo(
            f"group {group!r} exists and keeps its position; the start given applies to a "
            "new group only",
            err=True,
        )
    done = threading.Event()

    def handle(item: readers.StreamEvent) -> None:
        if done.is_set():
            raise _Enough  # not printed, not acknowledged: it stays pending for the group
        if not show(item.event, item.stream_id):
            done.set()

    with contextlib.suppress(_Enough):
        reader.run(handle, stop=done)


def recent_events(
    client: redis.Redis,
    stream: str,
    count: int,
    wanted: Callable[[dict[str, Any]], bool],
    *,
    page: int = 500,
    scan_limit: int = 100_000,
    gate: readers.EventGate | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """The last `count` wanted events of the stream, oldest first (scans at most `scan_limit`)."""
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
            raw = readers.raw_of_entry(fields)
            event = gate.admit(raw) if gate is not None else readers.parse_entry(fields)
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


def _say_dropped(gate: readers.EventGate) -> None:
    if gate.dropped:
        counts = ", ".join(f"{reason} {n}" for reason, n in sorted(gate.dropped.items()))
        click.echo(f"dropped events that failed verification: {counts}", err=True)


# --------------------------------------------------------------------------- kyc-events

# kyc-events' own spellings of the unified command's options.
_ALIAS_OPTIONS = {"--count": "--batch"}


def kyc_events_argv(argv: Sequence[str]) -> list[str]:
    """`kyc-events ARGS` as `kyc-poller events` arguments: JSON lines, following by default."""
    translated: list[str] = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        translated.append(_ALIAS_OPTIONS.get(name, name) + (eq + value if eq else ""))
    follow = [] if "--no-follow" in translated else ["--follow"]
    return ["events", "--json", *follow, *translated]


COMMANDS = (events,)
