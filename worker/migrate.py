"""Moved to `worker.entrypoints.migrate`; re-exported for one release.

`python -m worker.migrate` keeps working (compose's migration service runs it).
"""

from worker.entrypoints.migrate import alembic_config, main, upgrade

__all__ = ["alembic_config", "main", "upgrade"]

if __name__ == "__main__":
    raise SystemExit(main())
