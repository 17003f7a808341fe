"""`kyc-poller`: the operator's command line (click, which Celery already brings).

    kyc-poller providers [--json]      each provider's circuit, pause and rate limit
    kyc-poller provider-reset NAME     forget a provider's circuit, pause and rate state

Exit codes: 0 done, 1 a service could not be reached, 2 bad usage.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import click
import redis

from worker.adapters.registry import PROVIDER_NAMES
from worker.config import Settings
from worker.domain.errors import ConfigurationError
from worker.runtime import Runtime


def _runtime() -> Runtime:
    try:
        return Runtime(Settings.from_env())
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None


@click.group()
def main() -> None:
    """Operate a kyc-poller fleet (reads the same environment as the workers)."""


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def providers(as_json: bool) -> None:
    """Circuit breaker, pause and rate limit of every provider, fleet-wide."""
    runtime = _runtime()
    configured = set(runtime.adapters)
    try:
        statuses = [runtime.governor.status(name) for name in PROVIDER_NAMES]
    except redis.RedisError as exc:
        click.echo(f"error: cannot read provider state from Redis ({type(exc).__name__})", err=True)
        sys.exit(1)
    if as_json:
        for status in statuses:
            record = asdict(status)
            record["configured"] = status.provider in configured
            click.echo(json.dumps(record, sort_keys=True, default=str))
        return
    click.echo(
        f"{'provider':<10} {'configured':<10} {'circuit':<10} {'open for':>9} "
        f"{'faults':>6} {'ok':>6} {'paused':>7} {'rate/s':>7} {'burst':>6}"
    )
    for s in statuses:
        rate = f"{s.rate.per_second:g}" if s.rate.per_second > 0 else "-"
        click.echo(
            f"{s.provider:<10} {'yes' if s.provider in configured else 'no':<10} "
            f"{s.state.value:<10} {s.open_for_seconds:>8.1f}s {s.window_faults:>6} "
            f"{s.window_successes:>6} {s.paused_for_seconds:>6.1f}s {rate:>7} {s.rate.burst:>6}"
        )


@main.command(name="provider-reset")
@click.argument("name", type=click.Choice(PROVIDER_NAMES))
def provider_reset(name: str) -> None:
    """Close NAME's circuit and lift its pause now (e.g. after fixing its credentials)."""
    try:
        _runtime().governor.reset(name)
    except redis.RedisError as exc:
        click.echo(f"error: cannot reach Redis ({type(exc).__name__})", err=True)
        sys.exit(1)
    click.echo(f"{name}: circuit closed, pause lifted")


if __name__ == "__main__":
    main()
