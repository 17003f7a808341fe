"""`kyc-poller` as an on-call person runs it: a subprocess, a real database, a real Redis.

Setup (verifications in given states, polls against the fake providers, the relay) runs
in the test process through the product's own code; every command under test runs as
`python -m worker.cli …` with nothing but environment variables.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from sqlalchemy.engine import make_url

from devkit.embedded_redis import free_port
from devkit.fake_providers.credentials import FakeCredentials
from models import Transition, Verification, utcnow
from models.db import Database
from tests.support.providers import unique_session_id
from worker.config import Settings
from worker.domain.errors import ErrorCode
from worker.domain.statuses import VerificationStatus as S
from worker.entrypoints.migrate import upgrade
from worker.runtime import Runtime

ROOT = Path(__file__).resolve().parents[3]
CHANNEL = "cli.test.events"
STREAM = "cli.test.events.stream"
# Variables of the developer's shell that would change what the CLI reads.
_OWN_PREFIXES = ("KYC_", "REDIS_URL", "NOTUS_", "BANK131_", "GU1_", "PREDICATE_")


@dataclass
class Cli:
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "worker.entrypoints.cli", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def json_lines(self, *args: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.ok(*args, "--json").splitlines()]

    def fails(self, code: int, *args: str) -> str:
        """Run a command that must exit `code` with one clear line on stderr; that line."""
        done = self.run(*args)
        assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        return lines[0]

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)


def cli_env(database_url: str, redis_url: str, provider_env: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        # The session's event keys stay: the fleet's configuration has them.
        if not k.startswith(_OWN_PREFIXES)
        or k.startswith("KYC_EVENT_SIGNING_KEY")
        or k.startswith("KYC_EVENT_VERIFY_KEYS")
    }
    env.update(provider_env)
    env.update(
        KYC_DATABASE_URL=database_url,
        KYC_REDIS_URL=redis_url,
        KYC_EVENTS_CHANNEL=CHANNEL,
        KYC_EVENTS_STREAM=STREAM,
        KYC_LOG_FORMAT="json",
    )
    return env


@pytest.fixture
def cli(db, redis_url, fake_providers) -> Cli:
    """On both backends (the `db` fixture migrates the database)."""
    return Cli(cli_env(db.url, redis_url, fake_providers.provider_env()))


@pytest.fixture
def sqlite_cli(sqlite_url, redis_url, fake_providers) -> Cli:
    upgrade(sqlite_url)
    return Cli(cli_env(sqlite_url, redis_url, fake_providers.provider_env()))


def poll(cli: Cli, *verification_ids: int, relay: bool = True) -> None:
    """One poll of each against the fake providers, as a worker does; then the relay.

    relay=False: the events stay in the outbox (the batch does not publish them either).
    """
    runtime = Runtime(dataclasses.replace(cli.settings, relay_direct=relay))
    try:
        runtime.engine.poll_batch(list(verification_ids))
        if relay:
            runtime.relay.relay_all()
    finally:
        runtime.close()


def set_row(cli: Cli, verification_id: int, **values: Any) -> None:
    database = Database(cli.env["KYC_DATABASE_URL"])
    try:
        with database.session() as session, session.begin():
            row = session.get(Verification, verification_id)
            assert row is not None
            for name, value in values.items():
                setattr(row, name, value)
    finally:
        database.dispose()


def end_failed(cli: Cli, verification_id: int, code: str, *, from_status: S = S.IN_REVIEW) -> None:
    """The verification ends `failed` with `code`, as the engine writes it."""
    database = Database(cli.env["KYC_DATABASE_URL"])
    now = utcnow()
    try:
        with database.session() as session, session.begin():
            row = session.get(Verification, verification_id)
            assert row is not None
            version = row.version + 1
            session.add(
                Transition(
                    verification_id=verification_id,
                    version=version,
                    from_status=from_status,
                    to_status=S.FAILED,
                    reason="provider_error",
                    error_code=code,
                    occurred_at=now,
                )
            )
            row.status, row.version, row.next_poll_at = S.FAILED, version, None
            row.last_error_code = ErrorCode(code)
            row.last_error = f"HTTP 404 from {row.provider}"
            row.status_since = row.finished_at = now
    finally:
        database.dispose()


def track(cli: Cli, provider: str, external_id: str) -> int:
    return int(cli.json("track", provider, external_id)["verification_id"])


# --------------------------------------------------------------------------- a day on call


def test_track_status_history_list_and_events_of_real_polls(cli, fake_providers):
    session_id = unique_session_id("gu1")
    fake_providers.add_session("gu1", session_id, ["in_review", "approved"])

    out = cli.ok("track", "gu1", session_id)
    vid = int(out.split()[0])
    assert "now tracked" in out
    again = cli.json("track", "gu1", session_id)
    assert again == {
        "verification_id": vid,
        "created": False,
        "status": "pending",
        "provider": "gu1",
        "external_id": session_id,
    }

    poll(cli, vid)
    status = cli.json("status", "gu1", session_id)
    assert (status["status"], status["provider_status"], status["terminal"]) == (
        "in_review",
        "in_review",
        False,
    )
    assert status["total_polls"] == 1 and status["next_poll_at"] is not None
    human = cli.ok("status", "gu1", session_id)
    assert "in_review" in human and "next poll" in human

    poll(cli, vid)
    status = cli.json("status", "gu1", session_id)
    assert (status["status"], status["terminal"], status["next_poll_at"]) == (
        "approved",
        True,
        None,
    )
    history = cli.json_lines("history", "gu1", session_id)
    assert [(h["from_status"], h["to_status"], h["reason"]) for h in history] == [
        ("pending", "in_review", "provider"),
        ("in_review", "approved", "provider"),
    ]
    assert all(h["verification_id"] == vid for h in history)
    assert "in_review" in cli.ok("history", "gu1", session_id)

    # Predicate ids are UUIDs stored in lower case: any spelling finds the row.
    uuid = unique_session_id("predicate")
    pid = track(cli, "predicate", uuid.upper())
    assert cli.json("status", "predicate", uuid.upper())["external_id"] == uuid
    assert cli.json("status", "predicate", uuid)["verification_id"] == pid

    listed = cli.json_lines("list", "--provider", "gu1", "--status", "approved")
    assert [row["verification_id"] for row in listed] == [vid]
    assert {row["verification_id"] for row in cli.json_lines("list")} >= {vid, pid}
    table = cli.ok("list", "--provider", "predicate")
    assert uuid in table and "pending" in table

    # The relay published both events: the stream keeps them for `events`.
    events = cli.json_lines("events", "--provider", "gu1", "--external-id", session_id)
    assert [(e["from_status"], e["to_status"]) for e in events] == [
        ("pending", "in_review"),
        ("in_review", "approved"),
    ]
    assert cli.json("outbox")["unpublished"] == 0


# --------------------------------------------------------------------------- refusals


def test_bad_requests_exit_2_unknown_verifications_exit_3(sqlite_cli):
    """A few as a subprocess (tests/unit/test_cli.py has the rest of the usage errors)."""
    cli = sqlite_cli
    assert "veriff" in cli.fails(2, "status", "veriff", "x")
    assert "'..'" in cli.fails(2, "status", "gu1", "../etc/passwd")
    assert "UUID" in cli.fails(2, "history", "predicate", "not-a-uuid")
    line = cli.fails(2, "poll-now", "gu1", "x\x1b[31m")
    assert "plain token" in line and "\x1b" not in line  # quoted, never echoed raw
    assert "--limit" in cli.fails(2, "list", "--limit", "5000")
    assert "Missing argument" in cli.fails(2, "status", "gu1")
    assert cli.fails(2, "track", "predicate", "550e8400-e29b-41d4-a716-446655440000", "--type", "x")
    for command in ("status", "history", "retry", "poll-now"):
        line = cli.fails(3, command, "gu1", "never-tracked")
        assert "'never-tracked' is not tracked" in line
    # Nothing stored by any of it.
    assert cli.json_lines("list") == []


# --------------------------------------------------------------------------- list filters


def test_list_filters_stuck_failed_with_code_and_limit(cli):
    now = utcnow()
    stuck = track(cli, "notus", "stuck-1")
    set_row(cli, stuck, status=S.IN_REVIEW, status_since=now - timedelta(hours=3))
    fresh = track(cli, "notus", "fresh-1")
    set_row(cli, fresh, status=S.IN_REVIEW, status_since=now - timedelta(minutes=5))
    old_but_done = track(cli, "notus", "done-1")
    set_row(
        cli,
        old_but_done,
        status=S.APPROVED,
        next_poll_at=None,
        status_since=now - timedelta(days=2),
    )
    not_found = track(cli, "gu1", "gone-1")
    end_failed(cli, not_found, "not_found")
    malformed = track(cli, "gu1", "garbled-1")
    end_failed(cli, malformed, "malformed_response")
    waiting = track(cli, "gu1", "waiting-1")
    set_row(cli, waiting, last_error_code="not_found", last_error="HTTP 404 from gu1")

    def ids(*args: str) -> list[int]:
        return [row["verification_id"] for row in cli.json_lines("list", *args)]

    assert ids("--stuck-longer-than", "2h") == [stuck]
    # `waiting` was tracked moments ago; the failed and approved ones are terminal.
    assert ids("--stuck-longer-than", "1m") == [stuck, fresh]
    assert old_but_done not in ids("--stuck-longer-than", "1h")  # terminal: not stuck
    assert ids("--failed-with", "not_found") == [not_found]
    assert ids("--failed-with", "malformed_response") == [malformed]
    assert set(ids("--error-code", "not_found")) == {not_found, waiting}
    assert ids("--status", "failed", "--provider", "notus") == []
    assert set(ids("--status", "failed", "--status", "approved")) == {
        not_found,
        malformed,
        old_but_done,
    }

    # Longest in its status first; bounded by --limit, with a note on stderr.
    done = cli.run("list", "--limit", "2", "--json")
    assert done.returncode == 0
    first_two = [json.loads(line)["verification_id"] for line in done.stdout.splitlines()]
    assert first_two == [old_but_done, stuck]
    assert "showing 2 of 6" in done.stderr
    table = cli.ok("list", "--stuck-longer-than", "2h")
    assert "stuck-1" in table and "fresh-1" not in table
    assert "no verification matches" in cli.ok("list", "--failed-with", "timeout")


# --------------------------------------------------------------------------- retry, poll-now


def test_retry_reopens_a_failed_verification_with_its_own_transition_and_event(cli):
    vid = track(cli, "gu1", "retry-me")
    end_failed(cli, vid, "not_found", from_status=S.IN_REVIEW)

    out = cli.ok("retry", "gu1", "retry-me")
    assert "failed -> in_review" in out
    status = cli.json("status", "gu1", "retry-me")
    assert status["status"] == "in_review" and status["next_poll_at"] is not None
    last = cli.json_lines("history", "gu1", "retry-me")[-1]
    assert (last["from_status"], last["to_status"], last["reason"]) == (
        "failed",
        "in_review",
        "operator_retry",
    )
    backlog = cli.json("outbox")
    assert backlog["unpublished"] == 1
    assert backlog["oldest"][0]["verification_id"] == vid
    assert backlog["oldest"][0]["to_status"] == "in_review"
    assert "1 event(s) waiting" in cli.ok("outbox")

    assert "only failed or timed_out" in cli.fails(2, "retry", "gu1", "retry-me")
    end_failed(cli, vid, "not_found")
    assert cli.json("retry", "gu1", "retry-me") == {
        "verification_id": vid,
        "provider": "gu1",
        "external_id": "retry-me",
        "from_status": "failed",
        "to_status": "in_review",
    }


def test_poll_now_enqueues_one_batch_on_the_poll_queue(sqlite_cli):
    cli = sqlite_cli
    vid = track(cli, "notus", "nudge-1")
    client = redis.Redis.from_url(cli.env["KYC_REDIS_URL"])
    try:
        assert "poll enqueued on kyc.polls" in cli.ok("poll-now", "notus", "nudge-1")
        messages = [json.loads(raw) for raw in client.lrange("kyc.polls", 0, -1)]
        assert len(messages) == 1
        assert messages[0]["headers"]["task"] == "kyc.poll_batch"
        args, kwargs, _embed = json.loads(base64.b64decode(messages[0]["body"]))
        assert (args, kwargs) == ([[vid]], {})
        # A second nudge within the window collapses into the first poll.
        assert cli.json("poll-now", "notus", "nudge-1") == {
            "outcome": "collapsed",
            "verification_id": vid,
            "status": "pending",
        }
        assert client.llen("kyc.polls") == 1
    finally:
        client.close()
    set_row(cli, vid, status=S.APPROVED, next_poll_at=None)
    assert "terminal" in cli.fails(2, "poll-now", "notus", "nudge-1")


def test_pause_resume_and_provider_state(sqlite_cli):
    cli = sqlite_cli
    assert cli.json("pause", "gu1") == {"provider": "gu1", "paused_by_operator": True}
    states = {row["provider"]: row for row in cli.json_lines("providers")}
    assert states["gu1"]["paused_by_operator"] is True
    assert states["notus"]["paused_by_operator"] is False
    assert all(row["configured"] for row in states.values())
    assert "paused" in cli.ok("providers")
    assert "resumed" in cli.ok("resume", "gu1")
    states = {row["provider"]: row for row in cli.json_lines("providers")}
    assert states["gu1"]["paused_by_operator"] is False
    assert cli.json("provider-reset", "gu1") == {"provider": "gu1", "circuit": "closed"}


# --------------------------------------------------------------------------- events


def publish_events(cli: Cli, session_ids: list[str], fake_providers) -> list[int]:
    """Each session goes pending -> in_review through a real poll; the relay publishes."""
    vids = []
    for session_id in session_ids:
        fake_providers.add_session("gu1", session_id, ["in_review"])
        vids.append(track(cli, "gu1", session_id))
    poll(cli, *vids)
    return vids


def test_events_recent_and_replay_from_the_stream(sqlite_cli, fake_providers):
    cli = sqlite_cli
    assert cli.ok("events") == ""
    sessions = [unique_session_id("gu1") for _ in range(3)]
    vids = publish_events(cli, sessions, fake_providers)

    recent = cli.json_lines("events")
    assert sorted(e["verification_id"] for e in recent) == sorted(vids)
    assert [e["verification_id"] for e in cli.json_lines("events", "-n", "1")] == [
        recent[-1]["verification_id"]
    ]
    replayed = cli.json_lines("events", "--from-id", "0", "--show-id")
    assert [r["event"]["event_id"] for r in replayed] == [e["event_id"] for e in recent]
    after = cli.json_lines("events", "--after-id", replayed[0]["stream_id"])
    assert [e["event_id"] for e in after] == [e["event_id"] for e in recent[1:]]
    assert len(cli.json_lines("events", "--since", "1h")) == 3
    assert cli.json_lines("events", "--since", "2999-01-01T00:00:00Z") == []
    one = cli.json_lines("events", "--provider", "gu1", "--external-id", sessions[1])
    assert [e["verification_id"] for e in one] == [vids[1]]
    line = cli.ok("events", "--from-id", "0", "-n", "1")
    assert "pending -> in_review" in line and sessions[0] in line

    # A forged event (no signature the fleet made) is dropped, counted, and said so.
    forged = {**recent[0], "event_id": "forged-1", "to_status": "approved"}
    redis.Redis.from_url(cli.env["KYC_REDIS_URL"]).xadd(STREAM, {"event": json.dumps(forged)})
    done = cli.run("events", "--from-id", "0", "--json")
    assert done.returncode == 0
    assert "forged-1" not in done.stdout and "bad_signature 1" in done.stderr
    unchecked = cli.json_lines("events", "--from-id", "0", "--no-verify")
    assert unchecked[-1]["event_id"] == "forged-1"
    keyless = Cli({k: v for k, v in cli.env.items() if not k.startswith("KYC_EVENT_")})
    assert "--no-verify" in keyless.fails(2, "events")

    assert "stream id" in cli.fails(2, "events", "--from-id", "yesterday")
    assert "not several" in cli.fails(2, "events", "--from-id", "0", "--since", "1h")
    assert "time zone" in cli.fails(2, "events", "--since", "2026-01-01T00:00:00")
    assert "--provider" in cli.fails(2, "events", "--external-id", "x")


def test_events_follow_tails_the_channel_until_count(sqlite_cli, fake_providers):
    cli = sqlite_cli
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "worker.entrypoints.cli",
            "events",
            "--follow",
            "--json",
            "--count",
            "2",
        ],
        env=cli.env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = redis.Redis.from_url(cli.env["KYC_REDIS_URL"])
    try:
        deadline = time.monotonic() + 20
        while dict(client.pubsub_numsub(CHANNEL)).get(CHANNEL.encode(), 0) < 1:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the CLI never subscribed"
            time.sleep(0.05)
        vids = publish_events(cli, [unique_session_id("gu1") for _ in range(3)], fake_providers)
        out, err = process.communicate(timeout=20)
    finally:
        client.close()
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 2  # bounded by --count although three were published
    assert {line["verification_id"] for line in lines} <= set(vids)


# --------------------------------------------------------------------------- outbox


def test_outbox_shows_the_backlog_until_the_relay_publishes_it(sqlite_cli, fake_providers):
    cli = sqlite_cli
    assert cli.json("outbox") == {
        "unpublished": 0,
        "failing": 0,
        "oldest_created_at": None,
        "oldest_age_seconds": None,
        "oldest": [],
    }
    assert "outbox empty" in cli.ok("outbox")
    sessions = [unique_session_id("gu1") for _ in range(2)]
    vids = []
    for session_id in sessions:
        fake_providers.add_session("gu1", session_id, ["in_review"])
        vids.append(track(cli, "gu1", session_id))
    poll(cli, *vids, relay=False)
    backlog = cli.json("outbox", "--show", "1")
    assert backlog["unpublished"] == 2 and len(backlog["oldest"]) == 1
    assert backlog["oldest_age_seconds"] >= 0
    assert backlog["oldest"][0]["verification_id"] in vids
    runtime = Runtime(cli.settings)
    try:
        runtime.relay.relay_all()
    finally:
        runtime.close()
    assert cli.json("outbox")["unpublished"] == 0


# --------------------------------------------------------------------------- doctor


def secrets_of(env: dict[str, str]) -> list[str]:
    values = list(FakeCredentials().secret_values())
    values += [v for k, v in env.items() if k.endswith(("_API_KEY", "_PROJECT", "_SECRET"))]
    return [v for v in values if v]


def assert_no_secrets(done: subprocess.CompletedProcess[str], secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in done.stdout and secret not in done.stderr, secret


def with_password(url: str, password: str) -> str:
    return make_url(url).set(password=password).render_as_string(hide_password=False)


def test_doctor_passes_and_never_prints_secrets(db, redis_url, fake_providers):
    password = "db-pass-W7x2"
    database_url = db.url
    if make_url(database_url).get_backend_name() == "postgresql":
        database_url = with_password(database_url, password)  # trust auth: accepted, unused
    cli = Cli(cli_env(database_url, redis_url, fake_providers.provider_env()))
    done = cli.run("doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    assert_no_secrets(done, [*secrets_of(cli.env), password])
    lines = done.stdout.splitlines()
    assert len(lines) == 7 and all(line.startswith("ok ") for line in lines)
    assert "the migration scripts' head" in done.stdout

    report = cli.json("doctor")
    assert report["ok"] is True
    checks = {check["check"]: check for check in report["checks"]}
    assert checks["database"]["revision"] == checks["database"]["head"]
    assert checks["redis"]["status"] == "ok"
    for provider in ("notus", "bank131", "gu1", "predicate"):
        assert checks[f"provider {provider}"]["status"] == "ok"
        assert checks[f"provider {provider}"]["reachable"] is True
    assert password not in json.dumps(report)


def test_doctor_says_what_fails_without_leaking(sqlite_url, redis_url, fake_providers):
    upgrade(sqlite_url, "0002")  # an old schema
    env = fake_providers.provider_env()
    wrong_key = "gu1-WRONG-key-9f3"
    env["GU1_API_KEY"] = wrong_key  # credentials refused
    env["NOTUS_BASE_URL"] = f"http://127.0.0.1:{free_port()}/notus"  # nothing listens
    env.pop("PREDICATE_BASE_URL")
    env.pop("PREDICATE_API_KEY")  # not configured: skipped, not failed
    redis_password = "redis-pw-Q81"
    port = urlsplit(redis_url).port
    bad_redis = f"redis://:{redis_password}@127.0.0.1:{port}/0"
    cli = Cli(cli_env(sqlite_url, bad_redis, env))

    done = cli.run("doctor", "--timeout", "5")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert_no_secrets(done, [*secrets_of(cli.env), wrong_key, redis_password])
    report = json.loads(cli.run("doctor", "--json", "--timeout", "5").stdout)
    assert report["ok"] is False
    checks = {check["check"]: check for check in report["checks"]}
    assert checks["configuration"]["status"] == "ok"
    database = checks["database"]
    assert database["status"] == "fail"
    assert (
        "revision 0002" in database["detail"] and "python -m worker.migrate" in database["detail"]
    )
    assert database["revision"] == ["0002"] and database["head"] != ["0002"]
    assert checks["redis"]["status"] == "fail" and "***" in checks["redis"]["detail"]
    assert checks["provider gu1"]["status"] == "fail"
    assert "credentials refused" in checks["provider gu1"]["detail"]
    assert checks["provider notus"]["status"] == "fail"
    assert "unreachable" in checks["provider notus"]["detail"]
    assert checks["provider bank131"]["status"] == "ok"
    assert checks["provider predicate"]["status"] == "skip"
    assert wrong_key not in json.dumps(report) and redis_password not in json.dumps(report)


def test_doctor_on_a_database_never_migrated_and_a_broken_setting(tmp_path, redis_url):
    missing = f"sqlite:///{tmp_path / 'absent.db'}"
    cli = Cli(cli_env(missing, redis_url, {}))
    report = json.loads(cli.run("doctor", "--json").stdout)
    checks = {check["check"]: check for check in report["checks"]}
    assert checks["database"]["status"] == "fail"
    assert "does not exist" in checks["database"]["detail"]
    assert checks["configuration"]["status"] == "warn"  # no provider configured
    assert not (tmp_path / "absent.db").exists()  # doctor created nothing

    (tmp_path / "empty.db").touch()  # an empty SQLite database
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    cli = Cli(cli_env(empty, redis_url, {}))
    report = json.loads(cli.run("doctor", "--json").stdout)
    database = {check["check"]: check for check in report["checks"]}["database"]
    assert database["status"] == "fail" and "not migrated" in database["detail"]

    newer = f"sqlite:///{tmp_path / 'newer.db'}"
    upgrade(newer)
    with sqlite3.connect(tmp_path / "newer.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    cli = Cli(cli_env(newer, redis_url, {}))
    report = json.loads(cli.run("doctor", "--json").stdout)
    database = {check["check"]: check for check in report["checks"]}["database"]
    # The health check's rule: a newer schema works (migrations only add), doctor warns.
    assert database["status"] == "warn" and database["revision"] == ["9999"]
    assert "do not know" in database["detail"]

    broken = Cli({**cli.env, "KYC_POLL_BATCH_SIZE": "lots"})
    done = broken.run("doctor")
    assert done.returncode == 1
    assert "KYC_POLL_BATCH_SIZE" in done.stdout
    assert "KYC_POLL_BATCH_SIZE" in broken.fails(2, "list")

    # A database whose driver is not installed, a Redis URL redis-py cannot open: one line
    # each, no traceback.
    no_driver = Cli(cli_env("postgresql+pg8000://kyc:pw@127.0.0.1:1/kyc", redis_url, {}))
    report = json.loads(no_driver.run("doctor", "--json").stdout)
    database = {check["check"]: check for check in report["checks"]}["database"]
    assert database["status"] == "fail" and "driver" in database["detail"]
    bad_redis = Cli(cli_env(newer, "redis://cache:notaport/0", {}))
    for args in (("providers",), ("doctor",)):
        done = bad_redis.run(*args)
        assert done.returncode != 0 and "Traceback" not in done.stderr
        assert "KYC_REDIS_URL" in done.stdout + done.stderr


# --------------------------------------------------------------------------- services down


def test_services_down_exit_1_with_one_line(tmp_path, sqlite_url, fake_providers):
    upgrade(sqlite_url)
    dead_redis = f"redis://:pw-Zz9@127.0.0.1:{free_port()}/0"
    cli = Cli(cli_env(sqlite_url, dead_redis, fake_providers.provider_env()))
    for args in (("pause", "gu1"), ("providers",), ("events",), ("provider-reset", "gu1")):
        line = cli.fails(1, *args)
        assert "Redis" in line and "pw-Zz9" not in line
    vid = track(cli, "gu1", "down-1")
    line = cli.fails(1, "poll-now", "gu1", "down-1")
    assert "Redis" in line
    assert cli.json("status", "gu1", "down-1")["verification_id"] == vid  # no Redis needed

    nowhere = Cli(cli_env(f"sqlite:///{tmp_path / 'nowhere.db'}", dead_redis, {}))
    for args in (("status", "gu1", "x"), ("list",), ("outbox",), ("track", "gu1", "x")):
        assert "python -m worker.migrate" in nowhere.fails(1, *args)
    assert not (tmp_path / "nowhere.db").exists()


def test_ctrl_c_ends_a_follow_quietly(sqlite_cli):
    process = subprocess.Popen(
        [sys.executable, "-m", "worker.entrypoints.cli", "events", "--follow"],
        env=sqlite_cli.env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = redis.Redis.from_url(sqlite_cli.env["KYC_REDIS_URL"])
    try:
        deadline = time.monotonic() + 20
        while dict(client.pubsub_numsub(CHANNEL)).get(CHANNEL.encode(), 0) < 1:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=10)
    finally:
        client.close()
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert "Traceback" not in err and "following" in err


def test_api_tokens_are_made_hashed_and_revoked_fleet_wide(sqlite_cli, redis_url):
    from worker.domain.api_tokens import authenticate, digest_of, parse_tokens
    from worker.entrypoints.http.context import REVOKED_TOKENS_KEY

    made = sqlite_cli.json("api-token", "new", "billing", "--scopes", "read+track")
    (token,) = parse_tokens(made["entry"])
    assert authenticate(made["token"], [token]).name == "billing"
    assert sqlite_cli.ok("api-token", "hash", made["token"]).strip() == digest_of(made["token"])
    refused = sqlite_cli.run("api-token", "new", "billing", "--scopes", "admin")
    assert refused.returncode == 2 and "scopes" in refused.stderr
    client = redis.Redis.from_url(redis_url)
    try:
        sqlite_cli.ok("api-token", "revoke", "billing")
        assert client.sismember(REVOKED_TOKENS_KEY, "billing")
        sqlite_cli.ok("api-token", "restore", "billing")
        assert not client.sismember(REVOKED_TOKENS_KEY, "billing")
    finally:
        client.close()


def test_serve_refuses_a_bad_configuration_in_one_line(sqlite_cli):
    env = {**sqlite_cli.env, "GU1_WEBHOOK_SECRET": "short"}
    done = Cli(env).run("serve", "--port", "0")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "GU1_WEBHOOK_SECRET" in done.stderr
