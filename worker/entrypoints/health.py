"""`python -m worker.health`: can this process's configuration reach its database and broker?

The liveness/readiness check of poll workers, the control worker and beat (the
`healthcheck:` of their docker-compose services): with the same environment as the
process, it runs `worker.services.checks.health_checks` — the database's schema
revision (this code's, or a newer one: the same rule as `kyc-poller doctor`), `PING` on
the broker (and on the events/governor Redis when that is another server) — each
bounded by a short timeout, prints one line and exits 0 when every check passed, else 1:

    healthy: database ok (2 ms), broker ok (1 ms)
    unhealthy: database failed (OperationalError: connection refused), broker ok (1 ms)

Nothing is created or written: a SQLite file that does not exist is a failure.
Credentials never appear in the line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from worker.config import Settings
from worker.services.checks import DEFAULT_HEALTH_TIMEOUT_SECONDS, health_checks, health_line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m worker.health",
        description="Exit 0 if the database and the broker answer, else 1 (one line either way).",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_HEALTH_TIMEOUT_SECONDS,
        help="seconds each check may take (default %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except Exception as exc:
        print(f"unhealthy: configuration ({type(exc).__name__}: {exc})", flush=True)
        return 1
    checks = health_checks(settings, max(args.timeout, 0.1))
    print(health_line(checks), flush=True)
    return 0 if all(check.passed for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
