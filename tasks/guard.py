"""The task trust boundary, enforced where tasks run: a worker runs only its queues' tasks.

`worker.domain.queues` says which tasks belong to which queue. When a worker starts it
remembers the queues it consumes (`remember_queues`, from Celery's `celeryd_after_setup`);
every kyc-poller task is a `GuardedTask`, which refuses to run — the message is rejected
and dropped, logged and counted, never retried — when

- its name is not among the tasks of the queues this worker consumes (a `kyc.poll_batch`
  someone placed on `kyc.public` is refused by the worker serving `kyc.public`), or
- the message says it came through a queue its task does not belong to.

The first check rests on the worker's own configuration, not on anything in the message
(a routing key is the sender's claim). Outside a worker (eager tests, `apply()`) there
is nothing to check against and tasks run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import structlog
from celery import Task
from celery.exceptions import Reject

from worker.adapters import metrics
from worker.domain.queues import allowed_tasks, queues_of

log = structlog.get_logger(__name__)

_allowed: frozenset[str] | None = None
_consumed: tuple[str, ...] = ()


def remember_queues(queues: Iterable[str]) -> None:
    """This worker consumes `queues`: from now on it runs only their tasks."""
    global _allowed, _consumed
    _consumed = tuple(sorted(queues))
    _allowed = allowed_tasks(_consumed)
    log.info("task_guard_ready", queues=list(_consumed), tasks=sorted(_allowed))


def forget_queues() -> None:
    """Back to no guard (tests)."""
    global _allowed, _consumed
    _allowed, _consumed = None, ()


def refusal(task: str, routing_key: object) -> str | None:
    """Why `task` must not run here (None: it may)."""
    if _allowed is not None and task not in _allowed:
        return f"{task} is not run by a worker serving {', '.join(_consumed) or 'no queue'}"
    if isinstance(routing_key, str) and routing_key and routing_key not in queues_of(task):
        return f"{task} does not come through {routing_key[:64]!r}"
    return None


class GuardedTask(Task):  # type: ignore[misc]  # Celery is untyped
    """Every kyc-poller task: checked against the worker's queues before it runs."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        delivery = getattr(self.request, "delivery_info", None) or {}
        routing_key = delivery.get("routing_key") if isinstance(delivery, dict) else None
        reason = refusal(self.name, routing_key)
        if reason is not None:
            metrics.count_refused_task(self.name, routing_key)
            log.warning("task_refused", task=self.name, queue=routing_key, reason=reason)
            raise Reject(reason, requeue=False)
        return super().__call__(*args, **kwargs)
