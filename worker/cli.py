"""Moved to `worker.entrypoints.cli` (one module per command group); re-exported for one release.

`python -m worker.cli` keeps working.
"""

import sys

from worker.entrypoints.cli import (
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    CliError,
    cli,
    main,
)

__all__ = [
    "EXIT_FAILED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
    "PROG",
    "CliError",
    "cli",
    "main",
]

if __name__ == "__main__":
    sys.exit(main())
