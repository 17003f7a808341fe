"""`kyc-events`: replay, consumer groups (a real process killed and restarted), CloudEvents."""

import contextlib
import io
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

from tests.integration.events.support import add_events, make_relay
from worker.subscriber import main

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


def run_cli(*args):
    out = io.StringIO()
    code = main([*args], out=out)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


def test_replay_prints_cloudevents(sqlite_db, redis_url):
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


def test_replay_shows_stream_ids_to_resume_from(sqlite_db, redis_url):
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
        (["--from-id", "1-2", "--since", "2026-01-01T00:00:00Z"], "not allowed with"),
        (["--since", "2026-01-01T00:00:00"], "no time zone"),
        (["--since", "last tuesday"], "not an ISO 8601 time"),
        (["--no-follow"], "applies to a replay"),
        (["--group", "g", "--consumer", "c", "--no-follow", "--from-id", "0"], "replay"),
        (["--claim-idle", "5"], "--claim-idle applies to --group only"),
        (["--show-id"], "stream modes"),
        (["--from-id", "0", "--count", "0"], "--count must be at least 1"),
    ],
)
def test_cli_refuses_unclear_requests(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


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
    # (The group consumer runs until interrupted: stop it from its own output.)
    out = io.StringIO()

    class Stop(io.StringIO):
        def write(self, text):
            out.write(text)
            raise KeyboardInterrupt

    code = main(
        [*stream_args(redis_url), "--group", "existing", "--consumer", "c", "--from-id", "0"],
        out=Stop(),
    )
    assert code == 0
    assert "keeps its position" in capsys.readouterr().err
