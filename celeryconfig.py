"""Celery configuration for kyc-poller workers and beat (values come from the environment).

Queues (`worker.domain.queues`): apps' tasks (tracking, poll-now) go to `kyc.public`,
served by a worker of its own (Celery's default queue `celery` too, for one release);
beat's own tasks (the sweep, the relay) go to `kyc.control`, served by a worker of its
own, so they never wait behind polls; poll batches and retention go to `kyc.polls`.

Poll tasks are acked late and rejected back to the queue when a worker process
dies, so a crashed worker's batch runs again; the sweep's claim lease covers
anything the broker still loses.
"""

from __future__ import annotations

import os

from worker.config import Settings
from worker.domain.queues import TASK_ROUTES

_settings = Settings.from_env()

broker_url = _settings.effective_broker_url
broker_connection_retry_on_startup = True
# Redis broker: an unacked task is redelivered after this long (a dead worker's task).
broker_transport_options = {"visibility_timeout": int(max(_settings.claim_lease_seconds, 60))}

task_serializer = "json"
accept_content = ["json"]
result_serializer = "json"
# Results are kept for the tracking task only (apps read whether their request was
# stored or refused); every other task ignores its result.
task_ignore_result = True
result_backend = _settings.effective_result_backend
result_expires = 24 * 3600

task_routes = dict(TASK_ROUTES)

task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
task_time_limit = 120
task_soft_time_limit = 100

# structlog writes its own lines to stderr; do not re-log them through Celery.
worker_redirect_stdouts = False
timezone = "UTC"
enable_utc = True

beat_schedule_filename = os.environ.get("KYC_BEAT_SCHEDULE_FILE", "var/celerybeat-schedule")
beat_schedule = {
    "schedule-due-polls": {
        "task": "kyc.schedule_due_polls",
        "schedule": _settings.schedule_interval,
        "options": {"expires": max(_settings.schedule_interval * 2, 1.0)},
    },
    "relay-outbox": {
        "task": "kyc.relay_outbox",
        "schedule": _settings.relay_interval,
        "options": {"expires": max(_settings.relay_interval * 2, 1.0)},
    },
    "apply-retention": {
        "task": "kyc.apply_retention",
        "schedule": _settings.retention_interval,
        "options": {"expires": max(_settings.retention_interval, 1.0)},
    },
}
