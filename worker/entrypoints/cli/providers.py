"""`kyc-poller` commands about providers, fleet-wide: pause, resume, providers, provider-reset."""

from __future__ import annotations

from dataclasses import asdict

import click

from worker.adapters.registry import PROVIDER_NAMES
from worker.entrypoints.cli.base import PROG, emit, json_option, provider_argument, services


def _set_pause(provider: str, paused: bool, as_json: bool) -> None:
    with services() as runtime:
        if paused:
            runtime.governor.pause(provider)
        else:
            runtime.governor.resume(provider)
    if as_json:
        emit({"provider": provider, "paused_by_operator": paused})
    elif paused:
        click.echo(
            f"{provider}: paused fleet-wide; nothing is claimed or polled until "
            f"`{PROG} resume {provider}`"
        )
    else:
        click.echo(f"{provider}: resumed; its due verifications are polled at the next sweep")


@click.command()
@provider_argument
@json_option
def pause(provider: str, as_json: bool) -> None:
    """Stop polling PROVIDER fleet-wide (its verifications stay due) until `resume`."""
    _set_pause(provider, True, as_json)


@click.command()
@provider_argument
@json_option
def resume(provider: str, as_json: bool) -> None:
    """Lift an operator's pause on PROVIDER."""
    _set_pause(provider, False, as_json)


@click.command()
@json_option
def providers(as_json: bool) -> None:
    """Circuit breaker, pause and rate limit of every provider, fleet-wide."""
    with services() as runtime:
        configured = set(runtime.adapters)
        statuses = [runtime.governor.status(name) for name in PROVIDER_NAMES]
    if as_json:
        for item in statuses:
            record = asdict(item)
            record["configured"] = item.provider in configured
            emit(record)
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


@click.command(name="provider-reset")
@provider_argument
@json_option
def provider_reset(provider: str, as_json: bool) -> None:
    """Close PROVIDER's circuit and lift its rate pause now (an operator's pause stays)."""
    with services() as runtime:
        runtime.governor.reset(provider)
    if as_json:
        emit({"provider": provider, "circuit": "closed"})
    else:
        click.echo(f"{provider}: circuit closed, rate pause lifted")


COMMANDS = (pause, resume, providers, provider_reset)
