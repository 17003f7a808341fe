"""Entry points: every process kyc-poller runs, one module (or package) each.

- `cli`: `kyc-poller`, the operator's command line (and `kyc-events`, its alias for
  `kyc-poller events`);
- `health`: `python -m worker.entrypoints.health`, the containers' health check;
- `migrate`: `python -m worker.entrypoints.migrate`, the schema migration.

The Celery worker and beat are started by Celery itself (`celery -A tasks.app`).
"""
