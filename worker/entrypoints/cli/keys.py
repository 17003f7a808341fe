"""`kyc-poller keygen`: a new event-signing key pair (workers sign with it, readers verify)."""

from __future__ import annotations

import click

from worker.api.signing_keys import ENV_SIGNING_KEY, ENV_SIGNING_KEY_ID, ENV_VERIFY_KEYS
from worker.domain.signatures import KeyMaterialError, generate_key_pair
from worker.entrypoints.cli.base import EXIT_USAGE, CliError, emit, json_option


@click.command()
@click.option(
    "--key-id",
    required=True,
    metavar="ID",
    help="The key's id, put in every event it signs (e.g. the month: 2026-12).",
)
@json_option
def keygen(key_id: str, as_json: bool) -> None:
    """Make an Ed25519 key pair for signing events; prints the settings to give out.

    The private key goes to the workers only (KYC_EVENT_SIGNING_KEY, or a file in
    KYC_EVENT_SIGNING_KEY_FILE); the public entry goes to every reader's
    KYC_EVENT_VERIFY_KEYS (add it next to the old one while rotating).
    """
    try:
        pair = generate_key_pair(key_id)
    except KeyMaterialError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if as_json:
        emit(
            {
                "key_id": pair.key_id,
                "private_key": pair.private_key,
                "public_key": pair.public_key,
                "verify_keys_entry": pair.ring_entry,
            }
        )
        return
    click.echo("# workers only (keep it secret):")
    click.echo(f"{ENV_SIGNING_KEY}={pair.private_key}")
    click.echo(f"{ENV_SIGNING_KEY_ID}={pair.key_id}")
    click.echo("# every reader (apps, the CLI), next to the keys it already accepts:")
    click.echo(f"{ENV_VERIFY_KEYS}={pair.ring_entry}")


COMMANDS = (keygen,)
