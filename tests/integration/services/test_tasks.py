"""The Celery wiring, run eagerly (no broker): tasks call the plain functions correctly."""

import json

import pytest
import redis
from sqlalchemy import select

from models import Verification
from tasks.verification_tasks import (
    apply_retention,
    poll_verification,
    relay_outbox,
    schedule_due_polls,
    track_verification,
)
from worker.domain.errors import (
    InvalidExternalIdError,
    TrackingCeilingError,
    UnknownProviderError,
)
from worker.runtime import get_runtime, reset_runtime


def test_track_task_is_idempotent_and_reports_the_row(runtime_env):
    first = track_verification.delay("gu1", "val-tasks-1").get()
    second = track_verification.delay("gu1", "val-tasks-1").get()
    assert first["created"] is True and second["created"] is False
    assert first["verification_id"] == second["verification_id"]
    assert first["status"] == "pending"


@pytest.mark.parametrize(
    ("args", "error"),
    [(("nope", "x"), UnknownProviderError), (("notus", "../x"), InvalidExternalIdError)],
)
def test_track_task_fails_with_the_reason_on_bad_input(runtime_env, args, error):
    with pytest.raises(error):
        track_verification.delay(*args).get()
    with runtime_env.db.session() as session:
        assert session.scalars(select(Verification)).all() == []


def test_track_task_refuses_tracking_beyond_the_providers_ceiling(runtime_env, monkeypatch):
    monkeypatch.setenv("GU1_MAX_OPEN_VERIFICATIONS", "2")
    reset_runtime()
    for n in range(2):
        assert track_verification.delay("gu1", f"capped-{n}").get()["created"]
    with pytest.raises(TrackingCeilingError, match="ceiling"):
        track_verification.delay("gu1", "capped-2").get()
    assert track_verification.delay("notus", "not-capped").get()["created"]
    with get_runtime().db.session() as session:
        stored = session.scalars(select(Verification.external_id)).all()
    assert sorted(stored) == ["capped-0", "capped-1", "not-capped"]


def test_beat_tasks_poll_due_verifications_and_publish_their_events(runtime_env, fake_providers):
    fake_providers.add_session("notus", "sess-tasks-1", ["VERIFYING", "COMPLETED"])
    client = redis.Redis.from_url(runtime_env.settings.redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(runtime_env.settings.events_channel)
    pubsub.get_message(timeout=1)

    vid = track_verification.delay("notus", "sess-tasks-1").get()["verification_id"]
    assert schedule_due_polls.delay().get() == 1  # polled inline (eager), in_review now
    assert schedule_due_polls.delay().get() == 0  # not due again yet: leased and backed off
    assert poll_verification.delay(vid).get()["outcomes"] == {"transition": 1}
    assert relay_outbox.delay().get() == 0  # the poll task already relayed both

    received = []
    while (message := pubsub.get_message(timeout=0.5)) is not None:
        received.append(json.loads(message["data"])["to_status"])
    assert received == ["in_review", "approved"]
    assert poll_verification.delay(vid).get()["outcomes"] == {}  # terminal: skipped


def test_the_retention_task_runs_and_reports(runtime_env):
    report = apply_retention.delay().get()
    assert report == {
        "outbox_deleted": 0,
        "payloads_removed": 0,
        "more_left": False,
        "stream_entries_trimmed": 0,
    }
