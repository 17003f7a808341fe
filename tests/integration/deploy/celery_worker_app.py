"""A Celery app for the ACL tests' worker process: the real tracking service behind the task name.

`celery -A tests.integration.deploy.celery_worker_app worker -Q kyc.public` with
ACL_TEST_BROKER_URL (the `worker` credential) and ACL_TEST_DATABASE_URL set: a default
Celery worker (mingle, gossip, heartbeats, task events, remote control), so the test
sees every Redis command a worker serving kyc.public sends pass the worker's ACL.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from models.db import Database
from worker.services.tracking import track_verification

app = Celery(
    "acl_test",
    broker=os.environ["ACL_TEST_BROKER_URL"],
    backend=os.environ["ACL_TEST_BROKER_URL"],
)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_ignore_result=True,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)
_db = Database(os.environ["ACL_TEST_DATABASE_URL"])


@app.task(name="kyc.track_verification", ignore_result=False)
def track(provider: str, external_id: str, verification_type: str | None = None) -> dict[str, Any]:
    tracked = track_verification(_db, provider, external_id, verification_type)
    return {"verification_id": tracked.verification_id, "created": tracked.created}
