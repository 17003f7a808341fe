"""`kyc-events` (the alias of `kyc-poller events`): replay, consumer groups (a real process
killed and restarted), CloudEvents, and the unified command's refusals."""

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest
import redis

from tests.support.outbox_events import add_events, make_relay
from worker.entrypoints.cli import kyc_events_main as main

STREAM = "test.kyc.stream"
ROOT = Path(__file__).resolve().parents[3]

# CloudEvents 1.0, structured JSON: the spec's attribute rules, plus what kyc-poller promises
# (every attribute set; data is the legacy event document with its schema version).
CLOUDEVENT_SCHEMA = {
    "type": "object",
    "required": [
        "specversion",
        "id",
        "source",
        "type",
        "subject",
        "time",
        "datacontenttype",
        "data",
    ],
    "properties": {
        "specversion": {"const": "1.0"},
        "id": {"type": "string", "minLength": 1},
        "source": {"type": "string", "minLength": 1, "format": "uri-reference"},
        "type": {"type": "string", "pattern": r"^com\.kyc-poller\.[a-z0-9_.]+\.v[0-9]+$"},
        "subject": {"type": "string", "minLength": 1},
        "time": {"type": "string", "format": "date-time"},
        "datacontenttype": {"const": "application/json"},
        "data": {
            "type": "object",
            "required": ["event_id", "event_type", "schema_version", "verification_id"],
        },
    },
    "propertyNames": {"pattern": "^[a-z0-9]{1,20}$"},
}


def json_lines(out):
    """The printed events of stdout (the relay's log lines may share it in-process: theirs
    is an `event` name, a printed event has none or a document there)."""
    found = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in found if not isinstance(line.get("event"), str)]


@pytest.fixture
def run_cli(capsys):
    def run(*args):
        code = main([*args])
        return code, json_lines(capsys.readouterr().out)

    return run


def test_replay_prints_cloudevents(sqlite_db, redis_url, run_cli):
    event_ids = add_events(sqlite_db, verifications=2, per_verification=2)
    make_relay(sqlite_db, redis_url).relay_all()
    code, lines = run_cli(
        *["--redis-url", redis_url, "--stream", STREAM, "--source", "urn:kyc-poller:test"],
        *["--from-id", "0", "--no-follow", "--cloudevents"],
    )
    assert code == 0
    assert [ce["id"] for ce in lines] == event_ids
    checker = jsonschema.Draft202012Validator(
        CLOUDEVENT_SCHEMA, format_checker=jsonschema.FormatChecker()
    )
    for ce in lines:
        checker.validate(ce)
        assert ce["source"] == "urn:kyc-poller:test"
        assert ce["type"] == "com.kyc-poller.verification.status_changed.v1"
        assert ce["subject"] == f"gu1/{ce['data']['external_id']}"
        assert ce["time"] == ce["data"]["occurred_at"]
        assert ce["data"]["event_id"] == ce["id"] and ce["data"]["schema_version"] == 1


def test_replay_shows_stream_ids_to_resume_from(sqlite_db, redis_url, run_cli):
    event_ids = add_events(sqlite_db, verifications=1, per_verification=4)
    make_relay(sqlite_db, redis_url).relay_all()
    base = ["--redis-url", redis_url, "--stream", STREAM, "--no-follow", "--show-id"]
    _, lines = run_cli(*base, "--from-id", "0")
    assert [line["event"]["event_id"] for line in lines] == event_ids
    _, rest = run_cli(*base, "--after-id", lines[1]["stream_id"])
    assert [line["event"]["event_id"] for line in rest] == event_ids[2:]
    assert rest[0]["event"]["schema_version"] == 1  # legacy format unless --cloudevents


def read_lines(process, count, timeout=20.0):
    """`count` JSON lines from the process's stdout (a reader thread: no blocking forever)."""
    lines: list[dict] = []
    done = threading.Event()

    def reader():
        for raw in process.stdout:
            lines.append(json.loads(raw))
            if len(lines) >= count:
                break
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    done.wait(timeout)
    return lines


GROUP_ARGS = ["--group", "cli", "--consumer", "cli-1", "--from-id", "0", "--block", "0.2"]


def stream_args(url):
    return ["--redis-url", url, "--stream", STREAM]


@contextlib.contextmanager
def consumer_process(url, log_path):
    """`kyc-events --group …` as its own process; SIGKILLed at the end of the block."""
    with (
        log_path.open("a") as log,
        subprocess.Popen(
            [sys.executable, "-m", "worker.subscriber", *stream_args(url), *GROUP_ARGS],
            # (the old module path on purpose: it is kept working for one release),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        ) as process,
    ):
        try:
            yield process
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)


def test_a_killed_consumer_process_catches_up_when_it_is_back(sqlite_db, redis_url, tmp_path):
    log_path = tmp_path / "kyc-events.log"
    relay = make_relay(sqlite_db, redis_url, batch_size=200)
    first = add_events(sqlite_db, verifications=3, per_verification=1, prefix="a")
    relay.relay_all()
    with consumer_process(redis_url, log_path) as process:
        assert [e["event_id"] for e in read_lines(process, 3)] == first
        time.sleep(0.3)  # printed, then acknowledged; then killed

    missed = add_events(sqlite_db, verifications=200, per_verification=3, prefix="b")
    assert relay.relay_all().published == 600
    with consumer_process(redis_url, log_path) as process:
        caught_up = read_lines(process, 600)
    assert [e["event_id"] for e in caught_up] == missed, log_path.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--group", "g"], "--group needs --consumer"),
        (["--consumer", "c"], "--consumer needs --group"),
        (["--from-id", "yesterday"], "not a stream id"),
        (["--from-id", "1-2", "--since", "2026-01-01T00:00:00Z"], "not several"),
        (["--since", "2026-01-01T00:00:00"], "no time zone"),
        (["--since", "last tuesday"], "neither a duration"),
        (["--group", "g", "--consumer", "c", "--no-follow", "--from-id", "0"], "a consumer group"),
        (["--claim-idle", "5"], "--claim-idle applies to --group only"),
        (["--show-id"], "stream modes"),
        (["--from-id", "0", "--count", "0"], "--batch"),
    ],
)
def test_cli_refuses_unclear_requests(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_cli_says_when_redis_is_unreachable(capsys):
    code = main(["--redis-url", "redis://127.0.0.1:1/0", "--from-id", "0", "--no-follow"])
    assert code == 1
    assert "Redis at redis://127.0.0.1:1/0" in capsys.readouterr().err
    assert main(["--redis-url", "redis://app:s3cret@127.0.0.1:1/0", "--from-id", "0"]) == 1
    err = capsys.readouterr().err
    assert "redis://app:***@127.0.0.1:1/0" in err and "s3cret" not in err


def test_cli_group_start_applies_to_a_new_group_only(sqlite_db, redis_url, capsys):
    client = redis.Redis.from_url(redis_url)
    client.xgroup_create(STREAM, "existing", id="$", mkstream=True)
    add_events(sqlite_db, verifications=1, per_verification=1)
    make_relay(sqlite_db, redis_url).relay_all()
    add_events(sqlite_db, verifications=1, per_verification=1, prefix="w")
    make_relay(sqlite_db, redis_url).relay_all()
    # -n 1: the consumer stops after one event (a group otherwise reads until interrupted).
    group = ["--group", "existing", "--consumer", "c", "--from-id", "0"]
    code = main([*stream_args(redis_url), *group, "-n", "1"])
    assert code == 0
    out, err = capsys.readouterr()
    assert "keeps its position" in err
    # (log lines of the relay above may share stdout: count the event lines)
    assert len(json_lines(out)) == 1


def test_a_group_read_that_stops_at_its_count_leaves_the_rest_pending(sqlite_db, redis_url, capsys):
    event_ids = add_events(sqlite_db, verifications=1, per_verification=3)
    make_relay(sqlite_db, redis_url).relay_all()
    args = [*stream_args(redis_url), "--group", "n", "--consumer", "c", "--from-id", "0"]
    assert main([*args, "-n", "2"]) == 0
    first = [e["event_id"] for e in json_lines(capsys.readouterr().out)]
    assert first == event_ids[:2]
    assert main([*args, "-n", "1"]) == 0  # the same consumer resumes with what was not printed
    rest = [e["event_id"] for e in json_lines(capsys.readouterr().out)]
    assert rest == event_ids[2:]
