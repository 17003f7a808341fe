"""`kyc-poller unknown-statuses`, `reverifications`, and `history` with syncs, as subprocesses
(rows written the way the engine writes them). SQLite only: the queries behind them run on
both databases in tests/integration/services/test_watchlists.py."""

from __future__ import annotations

from datetime import timedelta

from models import Verification, VerificationAction, utcnow
from tests.integration.entrypoints.test_cli import Cli, cli_env
from worker.services.tracking import track_verification


def write(db, verification_id, **values):
    with db.session() as session, session.begin():
        row = session.get(Verification, verification_id)
        for name, value in values.items():
            setattr(row, name, value)


def test_watchlists_and_history_with_syncs(sqlite_db, redis_url):
    db = sqlite_db
    cli = Cli(cli_env(db.url, redis_url, {}))
    now = utcnow()
    waiting = [track_verification(db, "notus", f"odd-{n}") for n in range(3)]
    for tracked in waiting:
        write(
            db, tracked.verification_id, provider_status="ON_HOLD", last_error_code="unknown_status"
        )
    soon = track_verification(db, "gu1", "approved-soon")
    write(
        db,
        soon.verification_id,
        status="approved",
        expires_at=now + timedelta(days=3),
        next_poll_at=now + timedelta(days=1),
        finished_at=now,
    )
    due = track_verification(db, "gu1", "approved-due")
    write(
        db,
        due.verification_id,
        status="approved",
        expires_at=now - timedelta(hours=1),
        reverification_event_at=now,
        next_poll_at=None,
        finished_at=now,
    )
    synced = track_verification(db, "gu1", "stuck")
    with db.session() as session, session.begin():
        session.add(
            VerificationAction(
                verification_id=synced.verification_id,
                verification_version=2,
                kind="sync",
                outcome="accepted",
                http_status=200,
                detail="in_progress",
                occurred_at=now,
            )
        )
    write(db, synced.verification_id, last_sync_at=now)

    (word,) = cli.json_lines("unknown-statuses")
    assert (word["provider"], word["provider_status"], word["verifications"]) == (
        "notus",
        "ON_HOLD",
        3,
    )
    assert len(word["examples"]) == 3
    assert "ON_HOLD" in cli.ok("unknown-statuses", "--provider", "notus")
    assert cli.json_lines("unknown-statuses", "--provider", "gu1") == []

    listing = cli.json("reverifications", "--within", "7d")
    assert [e["external_id"] for e in listing["due"]] == ["approved-due"]
    assert [e["external_id"] for e in listing["expiring"]] == ["approved-soon"]
    assert cli.json("reverifications", "--within", "1d")["expiring_total"] == 0
    text = cli.ok("reverifications")
    assert "due: 1" in text and "approved-soon" in text

    status = cli.json("status", "gu1", "approved-soon")
    assert status["watched"] is True and status["expires_at"] is not None
    assert "checked until re-verification" in cli.ok("status", "gu1", "approved-soon")

    (action,) = [e for e in cli.json_lines("history", "gu1", "stuck") if e["entry"] == "action"]
    assert (action["kind"], action["outcome"], action["http_status"]) == ("sync", "accepted", 200)
    assert "(sync accepted: HTTP 200, gu1 said in_progress)" in cli.ok("history", "gu1", "stuck")
    assert "--within" in cli.fails(2, "reverifications", "--within", "soon")
