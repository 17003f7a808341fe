"""Publishes committed outbox events to the Redis channel, then marks them published.

Redis being down only delays events: rows stay unpublished and the next relay
run (beat, or right after a poll commits) tries again. A relay that dies after
publishing but before marking would publish again on the next run; a Redis
key per event id (SET NX in the same Lua script as PUBLISH) turns that second
publish into a no-op, so subscribers see each event once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import redis
import structlog
from sqlalchemy import func, select

from models import OutboxEvent, utcnow
from models.db import Database

log = structlog.get_logger(__name__)

DEDUPE_KEY_PREFIX = "kyc-poller:published-event:"

# KEYS[1] dedupe key, KEYS[2] channel; ARGV[1] message, ARGV[2] dedupe TTL seconds.
# Returns the number of subscribers reached, or -1 if this event was published before.
_PUBLISH_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[2])) then
  return redis.call('PUBLISH', KEYS[2], ARGV[1])
end
return -1
"""


@dataclass(frozen=True)
class RelayReport:
    published: int
    already_published: int
    pending_error: str | None


class OutboxRelay:
    """Moves outbox rows to Redis pub/sub in id order."""

    def __init__(
        self,
        db: Database,
        redis_client: redis.Redis,
        channel: str,
        *,
        dedupe_ttl: int,
        batch_size: int = 500,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.redis = redis_client
        self.channel = channel
        self.dedupe_ttl = dedupe_ttl
        self.batch_size = batch_size
        self.clock = clock
        self._publish_once = redis_client.register_script(_PUBLISH_ONCE)

    def relay_batch(self) -> RelayReport:
        """Publish up to one batch of unpublished events; stop at the first Redis error."""
        published = duplicates = 0
        error: str | None = None
        with self.db.session() as session, session.begin():
            query = (
                select(OutboxEvent)
                .where(OutboxEvent.published_at.is_(None))
                .order_by(OutboxEvent.id)
                .limit(self.batch_size)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            for row in session.scalars(query):
                message = json.dumps(row.payload, sort_keys=True, separators=(",", ":"))
                try:
                    reached = self._publish_once(
                        keys=[DEDUPE_KEY_PREFIX + row.event_id, self.channel],
                        args=[message, self.dedupe_ttl],
                    )
                except redis.RedisError as exc:
                    row.publish_attempts += 1
                    row.last_error = f"{type(exc).__name__}: {exc}"[:500]
                    error = row.last_error
                    log.warning(
                        "event_publish_failed",
                        event_id=row.event_id,
                        verification_id=row.verification_id,
                        error=row.last_error,
                    )
                    break
                row.published_at = self.clock()
                row.publish_attempts += 1
                row.last_error = None
                if reached == -1:
                    duplicates += 1
                else:
                    published += 1
                    log.info(
                        "event_published",
                        event_id=row.event_id,
                        verification_id=row.verification_id,
                        provider=row.payload.get("provider"),
                        to_status=row.payload.get("to_status"),
                        subscribers=reached,
                    )
        return RelayReport(published, duplicates, error)

    def relay_all(self, max_batches: int = 100) -> RelayReport:
        """Relay batches until the outbox is drained, Redis fails, or `max_batches` ran."""
        published = duplicates = 0
        for _ in range(max_batches):
            report = self.relay_batch()
            published += report.published
            duplicates += report.already_published
            # A short batch means the outbox is drained; an error means Redis is away.
            if (
                report.pending_error
                or report.published + report.already_published < self.batch_size
            ):
                return RelayReport(published, duplicates, report.pending_error)
        return RelayReport(published, duplicates, None)


def unpublished_count(db: Database) -> int:
    """How many events are waiting to be published (for health checks and tests)."""
    with db.session() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.published_at.is_(None))
            )
            or 0
        )
