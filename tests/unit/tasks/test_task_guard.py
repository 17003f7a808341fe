"""Which worker runs which task (worker.domain.queues, tasks.guard)."""

from __future__ import annotations

import pytest
from celery.exceptions import Reject

import tasks.verification_tasks  # noqa: F401  (registers the tasks)
from tasks import guard
from tasks.app import app
from worker.domain import queues


@pytest.fixture(autouse=True)
def no_guard():
    guard.forget_queues()
    yield
    guard.forget_queues()


def test_every_task_of_the_app_has_one_role_and_a_route():
    names = {name for name in app.tasks if name.startswith("kyc.")}
    roles = queues.PUBLIC_TASKS | queues.POLL_TASKS | queues.CONTROL_TASKS
    assert names == roles
    assert queues.PUBLIC_TASKS.isdisjoint(queues.POLL_TASKS | queues.CONTROL_TASKS)
    assert set(queues.TASK_ROUTES) == roles
    assert all(isinstance(app.tasks[name], guard.GuardedTask) for name in names)


def test_a_worker_runs_only_the_tasks_of_its_queues():
    assert queues.allowed_tasks([queues.PUBLIC_QUEUE]) == queues.PUBLIC_TASKS
    assert queues.allowed_tasks([queues.LEGACY_DEFAULT_QUEUE]) == queues.PUBLIC_TASKS
    assert queues.allowed_tasks([queues.POLL_QUEUE, queues.CONTROL_QUEUE]) == (
        queues.POLL_TASKS | queues.CONTROL_TASKS
    )
    assert queues.allowed_tasks(["someone.elses"]) == frozenset()


def test_refusals_rest_on_the_workers_queues_not_on_the_message():
    guard.remember_queues([queues.PUBLIC_QUEUE])
    assert guard.refusal("kyc.track_verification", "kyc.public") is None
    # The message may claim the poll queue: the worker serves apps, it still refuses.
    assert "not run by a worker serving kyc.public" in guard.refusal("kyc.poll_batch", "kyc.polls")
    assert guard.refusal("kyc.poll_batch", None) is not None
    guard.remember_queues([queues.POLL_QUEUE])
    assert guard.refusal("kyc.poll_batch", "kyc.polls") is None
    assert "does not come through" in guard.refusal("kyc.poll_batch", "kyc.public")


def test_outside_a_worker_only_the_claimed_queue_is_checked():
    assert guard.refusal("kyc.poll_batch", None) is None
    assert guard.refusal("kyc.poll_batch", "kyc.polls") is None
    assert guard.refusal("kyc.poll_batch", "kyc.public") is not None


def test_a_refused_task_is_rejected_without_running(monkeypatch):
    guard.remember_queues([queues.PUBLIC_QUEUE])
    ran = []
    task = app.tasks["kyc.relay_outbox"]
    monkeypatch.setattr(type(task), "run", lambda *a, **k: ran.append(1), raising=False)
    with pytest.raises(Reject):
        task()
    assert ran == []
