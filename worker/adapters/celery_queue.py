"""Sending poll batches to the poll workers by task name, from outside the worker (the CLI).

A process that has no task code (the CLI, an HTTP service) reaches `kyc.poll_batch`
through the broker with `send_task`: the task's name, arguments and queue are the
contract. Bounded: a broker that does not answer fails the call within seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from worker.config import POLL_QUEUE

POLL_BATCH_TASK = "kyc.poll_batch"


class CeleryPollQueue:
    """`PollQueue` over a Celery broker URL (one lazily made Celery app)."""

    def __init__(self, broker_url: str, *, expires_seconds: float) -> None:
        self.broker_url = broker_url
        self.expires_seconds = expires_seconds
        self._app: Any = None

    def _celery(self) -> Any:
        if self._app is None:
            from celery import Celery

            app = Celery("kyc-poller-client", broker=self.broker_url, set_as_current=False)
            app.conf.broker_connection_timeout = 5
            self._app = app
        return self._app

    def enqueue_polls(self, verification_ids: Sequence[int]) -> None:
        self._celery().send_task(
            POLL_BATCH_TASK,
            (list(verification_ids),),
            queue=POLL_QUEUE,
            # A batch still queued when its claim ran out is stale: the sweep claimed it again.
            expires=self.expires_seconds,
            retry=True,
            retry_policy={
                "max_retries": 2,
                "interval_start": 0,
                "interval_step": 0.5,
                "interval_max": 1,
            },
        )

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None
