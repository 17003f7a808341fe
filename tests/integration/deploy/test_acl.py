"""deploy/redis's ACL users on a real redis-server: each credential can do its job and no more.

The server runs the file deploy/redis/render-acl.sh renders (`default` off). Refusals
are checked one command at a time (NOPERM); what each user must be able to do is done
with the product's own code (relay, governor, subscriber helpers) and real Celery.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery
from kombu.entity import Queue

from models.db import Database
from tests.integration.deploy.conftest import (
    ROOT,
    USERS,
    Credentials,
    password_variable,
    render_acl,
)
from tests.support.event_keys import session_signer
from tests.support.outbox_events import add_events
from worker.api.events import GroupConsumer, iter_events, replay
from worker.domain.events import DEFAULT_EVENTS_CHANNEL, DEFAULT_EVENTS_STREAM
from worker.entrypoints.migrate import upgrade
from worker.services.governor import BreakerSettings, ProviderGovernor, RateLimit
from worker.services.relay import OutboxRelay

GOVERNOR_KEY = "kyc-poller:governor:notus:operator-pause"


@pytest.fixture
def acl(acl_redis) -> Credentials:
    """The module's ACL'd server, emptied first (as the devkit's admin user)."""
    admin = redis.Redis.from_url(acl_redis.server.url)
    try:
        admin.flushall()
        admin.acl_log_reset()
    finally:
        admin.close()
    return acl_redis


def refused(call, *args):
    """The command must be refused by the ACL (NOPERM), not fail for another reason."""
    with pytest.raises(redis.exceptions.NoPermissionError):
        call(*args)


@pytest.fixture
def events_db(tmp_path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'kyc.db'}"
    upgrade(url)
    db = Database(url)
    yield db
    db.dispose()


def published_events(acl, events_db, count=3) -> None:
    """Real events in the real stream and channel, published with the worker credential."""
    add_events(events_db, verifications=count, per_verification=1)
    relay = OutboxRelay(
        events_db,
        acl.client("worker"),
        DEFAULT_EVENTS_CHANNEL,
        dedupe_ttl=60,
        signer=session_signer(),
    )
    assert relay.relay_all().published == count


# ---------------------------------------------------------------- nobody without a password


def test_the_default_user_is_off(acl):
    anonymous = redis.Redis(host="127.0.0.1", port=acl.server.port, socket_timeout=5)
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            anonymous.ping()
    finally:
        anonymous.close()


def test_a_wrong_password_is_refused(acl):
    wrong = redis.Redis.from_url(acl.server.url_as("worker", "not-the-password"))
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            wrong.ping()
    finally:
        wrong.close()


# ---------------------------------------------------------------- subscriber


def test_a_subscriber_cannot_xadd(acl):
    refused(acl.client("subscriber").xadd, DEFAULT_EVENTS_STREAM, {"event": '{"to_status":1}'})


def test_a_subscriber_cannot_publish(acl):
    refused(acl.client("subscriber").publish, DEFAULT_EVENTS_CHANNEL, '{"to_status":"approved"}')


def test_a_subscriber_cannot_lpush(acl):
    refused(acl.client("subscriber").lpush, "kyc.polls", "{}")
    refused(acl.client("subscriber").lpush, "kyc.public", "{}")


def test_a_subscriber_cannot_delete_trim_or_touch_anything_else(acl, events_db):
    published_events(acl, events_db)
    subscriber = acl.client("subscriber")
    refused(subscriber.delete, DEFAULT_EVENTS_STREAM)
    refused(subscriber.xtrim, DEFAULT_EVENTS_STREAM, 0)
    refused(subscriber.set, DEFAULT_EVENTS_STREAM, "x")
    refused(subscriber.get, GOVERNOR_KEY)
    refused(subscriber.flushall)
    refused(subscriber.execute_command, "XGROUP", "DESTROY", DEFAULT_EVENTS_STREAM, "g")
    assert acl.client("worker").xlen(DEFAULT_EVENTS_STREAM) == 3


def test_a_subscriber_reads_with_the_helpers(acl, events_db):
    subscriber = acl.client("subscriber")
    consumer = GroupConsumer(subscriber, DEFAULT_EVENTS_STREAM, "app-1", "c-1", start_id="0")
    consumer.ensure_group()  # XGROUP CREATE … MKSTREAM
    published_events(acl, events_db)
    seen = []
    assert consumer.run(lambda item: seen.append(item.event), max_events=3) == 3  # XREADGROUP, XACK
    assert len(seen) == 3
    assert subscriber.xpending(DEFAULT_EVENTS_STREAM, "app-1")["pending"] == 0
    subscriber.xautoclaim(DEFAULT_EVENTS_STREAM, "app-1", "c-2", 0)
    assert subscriber.xinfo_groups(DEFAULT_EVENTS_STREAM)[0]["name"] == b"app-1"
    assert len(list(replay(subscriber, DEFAULT_EVENTS_STREAM, from_id="0", follow=False))) == 3
    assert len(subscriber.xrevrange(DEFAULT_EVENTS_STREAM, count=2)) == 2


def test_a_subscriber_hears_the_channel(acl, events_db):
    subscriber = acl.client("subscriber")
    events = iter_events(subscriber, DEFAULT_EVENTS_CHANNEL, poll_timeout=0.2, yield_idle=True)
    assert next(events) is None  # subscribed (SUBSCRIBE), nothing yet
    published_events(acl, events_db, count=1)
    deadline = time.monotonic() + 10
    event = None
    while event is None and time.monotonic() < deadline:
        event = next(events)
    assert event is not None and event["to_status"]
    events.close()


# ---------------------------------------------------------------- app


@pytest.fixture(scope="module")
def celery_worker(acl_redis, tmp_path_factory):
    """A real Celery worker serving kyc.public with the worker credential (real tracking)."""
    database_url = f"sqlite:///{tmp_path_factory.mktemp('celery') / 'kyc.db'}"
    upgrade(database_url)
    log = tmp_path_factory.mktemp("celery-log") / "worker.log"
    env = {
        **os.environ,
        "ACL_TEST_BROKER_URL": acl_redis.url("worker"),
        "ACL_TEST_DATABASE_URL": database_url,
    }
    argv = [
        sys.executable, "-m", "celery",
        "-A", "tests.integration.deploy.celery_worker_app",
        "worker", "-Q", "kyc.public", "--pool=solo", "-E",
        "--hostname", "acl-test@%h", "--loglevel", "INFO",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process, log
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def app_celery(acl) -> Celery:
    url = acl.url("app")
    app = Celery("acl-app", broker=url, backend=url, set_as_current=False)
    app.conf.update(broker_connection_retry=False, broker_connection_max_retries=0)
    return app


@pytest.mark.parametrize(
    ("queue", "external_id"),
    [(Queue("kyc.public", no_declare=True), "acl-no-declare"), ("kyc.public", "acl-declared")],
    ids=["no_declare", "declared"],
)
def test_an_app_sends_tracking_to_its_queue_and_reads_the_result(
    acl_redis, celery_worker, queue, external_id
):
    app = app_celery(acl_redis)
    try:
        result = app.send_task("kyc.track_verification", ("gu1", external_id), queue=queue)
        outcome = result.get(timeout=60)
    except Exception:
        print(celery_worker[1].read_text()[-3000:])
        raise
    finally:
        app.close()
    assert outcome["created"] is True and outcome["verification_id"] >= 1
    denials = redis.Redis.from_url(acl_redis.server.url).acl_log()
    assert [d for d in denials if d["username"] == "worker"] == []  # the worker needed nothing more


def test_an_app_cannot_enqueue_a_poll_batch(acl):
    app = app_celery(acl)
    try:
        with pytest.raises(Exception, match="no permissions"):
            app.send_task("kyc.poll_batch", ([1, 2, 3],), queue=Queue("kyc.polls", no_declare=True))
        with pytest.raises(Exception, match="no permissions"):
            app.send_task("kyc.poll_batch", ([1, 2, 3],), queue="kyc.polls")
    finally:
        app.close()
    refused(acl.client("app").lpush, "kyc.polls", "{}")
    refused(acl.client("app").lpush, "kyc.control", "{}")
    refused(acl.client("app").lpush, "celery", "{}")
    assert acl.client("worker").llen("kyc.polls") == 0


def test_an_app_cannot_touch_governor_keys(acl):
    app = acl.client("app")
    refused(app.set, GOVERNOR_KEY, "1")
    refused(app.get, GOVERNOR_KEY)
    refused(app.delete, "kyc-poller:governor:notus:breaker")
    refused(app.hgetall, "kyc-poller:governor:notus:breaker")
    assert acl.client("worker").exists(GOVERNOR_KEY) == 0


def test_an_app_cannot_write_events_nor_wreck_its_queue(acl):
    app = acl.client("app")
    refused(app.xadd, DEFAULT_EVENTS_STREAM, {"event": "{}"})
    refused(app.publish, DEFAULT_EVENTS_CHANNEL, "{}")
    refused(app.delete, "kyc.public")
    refused(app.sadd, "kyc.public", "x")  # a set where the queue's list belongs
    refused(app.lpush, "kyc.public\x06\x163", "{}")  # priorities are not the app's
    refused(app.sadd, "_kombu.binding.kyc.polls", "x")
    refused(app.flushall)
    refused(app.keys)
    refused(app.set, "celery-task-meta-forged", "{}")


# ---------------------------------------------------------------- worker


def test_the_worker_credential_runs_the_relay(acl, events_db):
    published_events(acl, events_db, count=5)
    worker = acl.client("worker")
    assert worker.xlen(DEFAULT_EVENTS_STREAM) == 5
    relay = OutboxRelay(
        events_db, worker, DEFAULT_EVENTS_CHANNEL, dedupe_ttl=60, signer=session_signer()
    )
    assert relay.trim_stream() >= 0  # TIME, XTRIM
    assert relay.relay_all().published == 0  # drained; dedupe keys set


def test_the_worker_credential_runs_the_governor(acl):
    governor = ProviderGovernor(
        acl.client("worker"), BreakerSettings(min_faults=1), {"notus": RateLimit(10, 2)}
    )
    assert governor.admit("notus", 5).granted == 2
    assert governor.record("notus", successes=0, faults=3) is not None  # opens
    assert governor.status("notus").state == "open"
    governor.reset("notus")
    assert acl.client("worker").set("kyc-poller:nudge:1", "1", nx=True, px=5000)


def test_the_worker_credential_cannot_administer_redis(acl):
    worker = acl.client("worker")
    refused(worker.flushall)
    refused(worker.flushdb)
    refused(worker.keys)
    refused(worker.config_get, "*")
    refused(worker.execute_command, "ACL", "SETUSER", "app", "+@all")
    refused(worker.execute_command, "ACL", "WHOAMI")
    refused(worker.info)
    refused(worker.client_list)
    refused(worker.execute_command, "CLIENT", "KILL", "TYPE", "normal")
    refused(worker.execute_command, "FUNCTION", "FLUSH")
    refused(worker.set, "someone-elses-key", "1")


# ---------------------------------------------------------------- operator


def test_the_operator_pauses_resumes_and_resets(acl):
    operator = ProviderGovernor(acl.client("operator"), BreakerSettings(), {})
    operator.pause("notus")
    assert operator.status("notus").paused_by_operator
    worker_view = ProviderGovernor(acl.client("worker"), BreakerSettings(), {})
    assert worker_view.admit("notus", 1).limited_by == "operator_paused"
    operator.resume("notus")
    operator.reset("notus")
    assert not operator.status("notus").paused_by_operator


def test_the_operator_reads_events_but_cannot_write_or_flush(acl, events_db):
    published_events(acl, events_db)
    operator = acl.client("operator")
    assert len(operator.xrevrange(DEFAULT_EVENTS_STREAM, count=10)) == 3
    refused(operator.xadd, DEFAULT_EVENTS_STREAM, {"event": "{}"})
    refused(operator.set, DEFAULT_EVENTS_STREAM, "overwritten")
    refused(operator.delete, DEFAULT_EVENTS_STREAM)
    refused(operator.publish, DEFAULT_EVENTS_CHANNEL, "{}")
    refused(operator.lpush, "kyc.polls", "{}")
    refused(operator.flushall)
    assert acl.client("worker").xlen(DEFAULT_EVENTS_STREAM) == 3


# ---------------------------------------------------------------- the renderer


def full_env(passwords):
    return {password_variable(u): p for u, p in passwords.items()}


def test_the_rendered_file_holds_hashes_not_passwords(acl_file: Path, acl_passwords):
    text = acl_file.read_text()
    for password in acl_passwords.values():
        assert password not in text
    assert text.count(" #") >= len(USERS)
    assert "user default off" in text
    assert "@" not in text.replace("+@", "").replace("-@", "")  # every placeholder filled


@pytest.mark.parametrize("user", USERS)
def test_the_renderer_needs_every_password_and_a_long_one(acl_passwords, user):
    env = full_env(acl_passwords)
    del env[password_variable(user)]
    missing = render_acl(env)
    assert missing.returncode != 0 and f"set {password_variable(user)}" in missing.stderr
    short = render_acl({**env, password_variable(user): "short"})
    assert short.returncode != 0 and "at least 16" in short.stderr
    assert missing.stdout == short.stdout == ""


def test_the_renderer_takes_other_event_names_and_refuses_globs(acl_passwords):
    env = full_env(acl_passwords)
    done = render_acl({**env, "KYC_EVENTS_CHANNEL": "acme.kyc"})
    assert done.returncode == 0
    assert "~acme.kyc.stream" in done.stdout and "&acme.kyc " in done.stdout
    bad = render_acl({**env, "KYC_EVENTS_STREAM": "events*"})
    assert bad.returncode != 0 and "plain tokens" in bad.stderr
