"""Moved to `worker.entrypoints.health` (the checks: `worker.services.checks`); re-exported for
one release. `python -m worker.health` keeps working (compose's healthcheck runs it)."""

import sys

from worker.domain.errors import SchemaNotReady
from worker.entrypoints.health import main
from worker.services.checks import health_checks as run_checks
from worker.services.checks import health_line as summary

__all__ = ["SchemaNotReady", "main", "run_checks", "summary"]

if __name__ == "__main__":
    sys.exit(main())
