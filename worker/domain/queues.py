"""Which task runs on which queue, and which tasks a worker may run: the task trust boundary.

Apps reach kyc-poller through one queue only, `kyc.public` (`kyc.track_verification`,
`kyc.poll_now`); Celery's default queue `celery` is served the same way for one release,
for apps that send without a queue. Internal work has queues apps cannot write to (Redis
ACLs, see README "Security model"): poll batches and retention on `kyc.polls`, beat's
sweep and relay on `kyc.control`.

A worker runs only the tasks of the queues it consumes (`allowed_tasks`), whatever a
message says about itself: a message's routing key is the sender's claim, so the check is
on the task's name against the worker's own queues. A worker that serves `kyc.public` and
nothing else therefore refuses a `kyc.poll_batch` someone put on its queue, and an
internal task never runs in a process serving apps. A worker consuming several queues
(the dev kit's) may run the tasks of each; production runs one role per worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

PUBLIC_QUEUE = "kyc.public"
# Celery's default queue: apps that send without `queue=` land here (served as public).
LEGACY_DEFAULT_QUEUE = "celery"
POLL_QUEUE = "kyc.polls"
CONTROL_QUEUE = "kyc.control"

PUBLIC_TASKS = frozenset({"kyc.track_verification", "kyc.poll_now"})
POLL_TASKS = frozenset({"kyc.poll_batch", "kyc.poll_verification", "kyc.apply_retention"})
CONTROL_TASKS = frozenset({"kyc.schedule_due_polls", "kyc.relay_outbox"})

QUEUE_TASKS: Mapping[str, frozenset[str]] = {
    PUBLIC_QUEUE: PUBLIC_TASKS,
    LEGACY_DEFAULT_QUEUE: PUBLIC_TASKS,
    POLL_QUEUE: POLL_TASKS,
    CONTROL_QUEUE: CONTROL_TASKS,
}

# Celery's `task_routes`: where each task is sent.
TASK_ROUTES: Mapping[str, Mapping[str, str]] = {
    **{name: {"queue": PUBLIC_QUEUE} for name in sorted(PUBLIC_TASKS)},
    **{name: {"queue": POLL_QUEUE} for name in sorted(POLL_TASKS)},
    **{name: {"queue": CONTROL_QUEUE} for name in sorted(CONTROL_TASKS)},
}


def allowed_tasks(queues: Iterable[str]) -> frozenset[str]:
    """The tasks a worker consuming `queues` may run (none for a queue of no role)."""
    allowed: set[str] = set()
    for queue in queues:
        allowed |= QUEUE_TASKS.get(queue, frozenset())
    return frozenset(allowed)


def queues_of(task: str) -> frozenset[str]:
    """The queues `task` belongs to."""
    return frozenset(queue for queue, names in QUEUE_TASKS.items() if task in names)
