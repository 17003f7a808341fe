"""Outbox events written straight into the database, many at once (the relay's input)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import cast

import redis
from sqlalchemy import select

from models import OutboxEvent
from models.db import Database
from tests.doubles import FakeClock
from tests.support.event_keys import session_signer
from worker.domain.events import StatusChange, build_status_event
from worker.services.relay import OutboxRelay
from worker.services.tracking import insert_verification_if_absent

STATUSES = ["pending", "in_progress", "in_review", "retry", "in_review", "approved"]


def add_events(
    db: Database, verifications: int, per_verification: int, *, prefix: str = "v"
) -> list[str]:
    """Commit `per_verification` transitions for each of `verifications` new verifications.

    Events are interleaved across verifications (round robin), as a busy fleet writes
    them; returns the event ids in outbox (commit) order.
    """
    clock = FakeClock()
    ids: list[int] = []
    with db.session() as session, session.begin():
        for n in range(verifications):
            vid, _ = insert_verification_if_absent(
                session,
                provider="gu1",
                external_id=f"{prefix}{n}",
                verification_type=None,
                now=clock(),
            )
            ids.append(vid)
    with db.session() as session, session.begin():
        for step in range(per_verification):
            for n, vid in enumerate(ids):
                clock.advance(0.001)
                event = build_status_event(
                    StatusChange(
                        verification_id=vid,
                        verification_version=step + 2,
                        provider="gu1",
                        external_id=f"{prefix}{n}",
                        verification_type=None,
                        from_status=STATUSES[step % len(STATUSES)],
                        to_status=STATUSES[(step + 1) % len(STATUSES)],
                        terminal=False,
                        provider_status=None,
                        reason="provider",
                        error_code=None,
                        related_external_id=None,
                        occurred_at=clock(),
                    )
                )
                session.add(
                    OutboxEvent(
                        event_id=event["event_id"],
                        event_type=event["event_type"],
                        verification_id=vid,
                        payload=event,
                    )
                )
    with db.session() as session:
        return list(
            session.scalars(
                select(OutboxEvent.event_id)
                .where(OutboxEvent.verification_id.in_(ids))
                .order_by(OutboxEvent.id)
            )
        )


def make_relay(db: Database, url: str, **kwargs: object) -> OutboxRelay:
    kwargs.setdefault("dedupe_ttl", 3600)
    kwargs.setdefault("stream", "test.kyc.stream")
    kwargs.setdefault("signer", session_signer())
    return OutboxRelay(
        db,
        redis.Redis.from_url(url, socket_timeout=5),
        "test.kyc.events",
        **kwargs,  # type: ignore[arg-type]
    )


def stream_event_ids(url: str, stream: str = "test.kyc.stream") -> list[str]:
    client = redis.Redis.from_url(url)
    try:
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(stream))
        return [json.loads(fields[b"event"])["event_id"] for _, fields in entries]
    finally:
        client.close()


def wait_until(
    predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
