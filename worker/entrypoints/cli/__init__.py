"""`kyc-poller`: the on-call person's command line (click, which Celery already brings).

It reads the same environment as the workers (`Settings.from_env()`). One module per
group of commands, all sharing `base` (exit codes, errors, output, parameter types):

    verifications   track, status, history, list, retry, poll-now
    watchlists      unknown-statuses, reverifications
    providers       pause, resume, providers, provider-reset
    events          events (and `kyc-events`, its alias)
    diagnostics     outbox, doctor
    service         serve, api-token
    keys            keygen
    service         serve (the HTTP service), api-token

Every command takes `--json` (one JSON object, or one per line for lists and streams).
Exit codes: 0 done, 1 a check failed or a service could not be reached, 2 bad usage or a
refused request (unknown provider, bad id, nothing to do), 3 verification not found.
Errors go to stderr, one line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from worker.entrypoints.cli import (
    diagnostics,
    events,
    keys,
    providers,
    service,
    verifications,
    watchlists,
)
from worker.entrypoints.cli.base import (
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    CliError,
)

__all__ = [
    "EXIT_FAILED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
    "PROG",
    "CliError",
    "cli",
    "kyc_events_main",
    "main",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Operate a kyc-poller fleet (reads the same environment as the workers).

    Exit codes: 0 done; 1 a check failed or a service could not be reached; 2 bad usage
    or a refused request; 3 verification not found.
    """


for _module in (verifications, watchlists, providers, events, diagnostics, service, keys):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main(argv: Sequence[str] | None = None, *, prog: str = PROG) -> int:
    """`kyc-poller`: run one command and return its exit code (errors: one line on stderr)."""
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None, prog_name=prog, standalone_mode=False
        )
    except CliError as exc:
        click.echo(f"{prog}: error: {exc.message}", err=True)
        return exc.code
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            click.echo(exc.format_message(), err=True)
            return EXIT_USAGE
        command = exc.ctx.command_path if exc.ctx is not None else prog
        message = " ".join(exc.format_message().split())
        click.echo(f"{command}: error: {message} (see `{command} --help`)", err=True)
        return EXIT_USAGE
    except click.ClickException as exc:
        click.echo(f"{prog}: error: {' '.join(exc.format_message().split())}", err=True)
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


def kyc_events_main(argv: Sequence[str] | None = None) -> int:
    """`kyc-events`: `kyc-poller events --json --follow` with kyc-events' own options."""
    args = sys.argv[1:] if argv is None else list(argv)
    if any(arg in ("-h", "--help") for arg in args):
        return main(["events", "--help"], prog="kyc-events")
    return main(events.kyc_events_argv(args), prog="kyc-events")


if __name__ == "__main__":
    sys.exit(main())
