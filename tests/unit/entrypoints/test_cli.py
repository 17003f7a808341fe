"""`kyc-poller` without servers: argument checks, exit codes, and the helpers behind them."""

from __future__ import annotations

import json

import fakeredis
import pytest

from worker.entrypoints import cli
from worker.entrypoints.cli.events import recent_events


def test_recent_events_are_the_last_wanted_ones_oldest_first():
    client = fakeredis.FakeRedis()
    for n in range(7):
        event = {
            "event_id": f"e{n}",
            "event_type": "verification.status_changed",
            "schema_version": 1,
            "verification_id": n,
            "to_status": "approved",
            "provider": "gu1" if n % 2 else "notus",
        }
        client.xadd("s", {"event": json.dumps(event)})
    client.xadd("s", {"event": "not json"})
    found = recent_events(client, "s", 2, lambda e: e["provider"] == "gu1", page=2)
    assert [event["event_id"] for _, event in found] == ["e3", "e5"]
    everything = recent_events(client, "s", 100, lambda e: True, page=3)
    assert [event["verification_id"] for _, event in everything] == list(range(7))
    assert recent_events(client, "absent", 5, lambda e: True) == []


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["status", "veriff", "x"], "'veriff' is not one of"),
        (["status", "gu1"], "Missing argument"),
        (["list", "--limit", "0"], "--limit"),
        (["list", "--limit", "1001"], "--limit"),
        (["list", "--status", "done"], "--status"),
        (["list", "--stuck-longer-than", "soon"], "not a duration"),
        (["list", "--failed-with", "oops"], "--failed-with"),
        (["events", "--from-id", "abc"], "not a stream id"),
        (["events", "--from-id", "0", "--after-id", "0"], "not several"),
        (["events", "--since", "tomorrow"], "neither a duration"),
        (["events", "--external-id", "x"], "needs --provider"),
        (["history", "gu1", "x", "--limit", "0"], "--limit"),
        (["doctor", "--timeout", "0"], "--timeout"),
        (["nope"], "No such command"),
    ],
)
def test_bad_usage_exits_2_with_one_line(argv, needle, capsys):
    assert cli.main(argv) == cli.EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err and "error:" in err


def test_hostile_ids_are_refused_before_any_service_is_touched(capsys, monkeypatch):
    monkeypatch.setenv("KYC_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    for argv in (
        ["status", "gu1", "../../etc/passwd"],
        ["history", "predicate", "not-a-uuid"],
        ["retry", "notus", "a b"],
        ["poll-now", "bank131", "x" * 200],
        ["events", "--provider", "gu1", "--external-id", "a/b"],
    ):
        assert cli.main(argv) == cli.EXIT_USAGE, argv
        _, err = capsys.readouterr()
        assert len(err.strip().splitlines()) == 1
        assert "external id" in err or "UUID" in err


def test_a_broken_setting_is_bad_usage(capsys, monkeypatch):
    monkeypatch.setenv("KYC_POLL_BATCH_SIZE", "many")
    assert cli.main(["list"]) == cli.EXIT_USAGE
    _, err = capsys.readouterr()
    assert "KYC_POLL_BATCH_SIZE" in err


def test_help_exits_0(capsys):
    assert cli.main(["--help"]) == cli.EXIT_OK
    out, _ = capsys.readouterr()
    for command in (
        "track",
        "status",
        "history",
        "list",
        "retry",
        "poll-now",
        "pause",
        "resume",
        "events",
        "outbox",
        "doctor",
        "providers",
        "provider-reset",
    ):
        assert command in out
