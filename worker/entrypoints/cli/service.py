"""`kyc-poller` commands of the HTTP service: serve, and api-token (new, hash, revoke, restore)."""

from __future__ import annotations

import click

from worker.domain.api_tokens import Scope, digest_of, new_token, parse_tokens
from worker.entrypoints.cli.base import (
    EXIT_USAGE,
    CliError,
    emit,
    exit_with,
    json_option,
    services,
)


@click.command()
@click.option("--host", help="Address to listen on (default KYC_SERVE_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default KYC_SERVE_PORT, 8000).")
def serve(host: str | None, port: int | None) -> None:
    """Run the HTTP service: provider webhooks, the app API, /healthz, /metrics, /docs."""
    from worker.entrypoints.serve import run

    exit_with(run(host, port))


@click.group(name="api-token")
def api_token() -> None:
    """Make, revoke and restore tokens of the HTTP API (configured as SHA-256 hashes)."""


def _scopes(text: str) -> str:
    entry = f"x:{text}:{'0' * 64}"
    try:
        (token,) = parse_tokens(entry)
    except ValueError as exc:
        raise CliError(str(exc).replace("'x'", "the token"), EXIT_USAGE) from None
    return "+".join(sorted(scope.value for scope in token.scopes))


@api_token.command(name="new")
@click.argument("name")
@click.option(
    "--scopes",
    default="read",
    show_default=True,
    help=f"Scopes joined by '+': {', '.join(s.value for s in Scope)}.",
)
@json_option
def new(name: str, scopes: str, as_json: bool) -> None:
    """Make a token: prints it once, and the KYC_API_TOKENS entry that holds its hash."""
    scope_text = _scopes(scopes)
    token = new_token()
    entry = f"{name}:{scope_text}:{digest_of(token)}"
    try:
        parse_tokens(entry)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if as_json:
        emit({"name": name, "token": token, "entry": entry})
        return
    click.echo(f"token (give it to the app; it is not stored anywhere): {token}")
    click.echo(f"KYC_API_TOKENS entry (configuration holds only the hash): {entry}")


@api_token.command(name="hash")
@click.argument("token")
def hash_(token: str) -> None:
    """The SHA-256 hash of an existing token, as configuration holds it."""
    click.echo(digest_of(token))


@api_token.command()
@click.argument("name")
def revoke(name: str) -> None:
    """Refuse NAME's token on every service replica at once (until `restore`)."""
    from worker.entrypoints.http.context import REVOKED_TOKENS_KEY

    with services() as runtime:
        runtime.redis.sadd(REVOKED_TOKENS_KEY, name)
    click.echo(f"api token {name!r} revoked: every replica refuses it from its next request")


@api_token.command()
@click.argument("name")
def restore(name: str) -> None:
    """Accept NAME's token again (remove it from the revoked list)."""
    from worker.entrypoints.http.context import REVOKED_TOKENS_KEY

    with services() as runtime:
        runtime.redis.srem(REVOKED_TOKENS_KEY, name)
    click.echo(f"api token {name!r} accepted again")


COMMANDS = (serve, api_token)
