"""Publishes committed outbox events to Redis, then marks them published.

Each event goes, in one atomic Lua step, to a Redis Stream (kept for a while:
subscribers that were away catch up, consumer groups acknowledge) and to the
pub/sub channel (live only). A whole batch is one script call, so one round
trip, and the rows it published are marked in one UPDATE.

Two ways in, one way out (`_publish`, the only place a message is built and sent):

- `publish_committed`: a poll batch's own events, right after its commit, with no
  turn to wait for, when none of their verifications had an earlier event still
  unpublished (the write checked: `worker.domain.outbox` says why order holds);
- `relay_batch`: the ordered relay (after a batch whose events were held back or
  failed, and every 2 s from beat): whatever is unpublished, in outbox order.

Redis being down only delays events: rows stay unpublished and the next relay
run (beat, or right after a poll commits) tries again. A relay that dies after
publishing but before marking would publish again on the next run; a Redis
key per event id (SET NX in the same script as XADD and PUBLISH) turns that
second publish into a no-op, so the stream and the channel carry each event once.

Signatures: with a signer (the workers' KYC_EVENT_SIGNING_KEY), each event is signed as it
is published (Ed25519 over its RFC 8785 bytes, `worker.domain.signatures`): the stream entry's
`event` field and the channel's message are the signed document. The outbox keeps the
unsigned one: only a process holding the key can make a message readers accept.

Order: ordered relays are serialized (SQLite's write lock; a transaction-scoped
advisory lock on PostgreSQL) and publish in outbox id order, stopping at the first
event Redis refuses: nothing after it is published before it. One verification's
events are committed in version order, so the stream holds them in that order.
The direct path publishes only events whose every predecessor is already in Redis.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import redis
import structlog
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from models import OutboxEvent, utcnow
from models.db import Database
from worker.domain.events import (
    STREAM_FIELD_EVENT,
    STREAM_FIELD_EVENT_ID,
    STREAM_FIELD_VERIFICATION_ID,
    stream_for_channel,
)
from worker.domain.outbox import OutboxEntry
from worker.domain.signatures import EventSigner

log = structlog.get_logger(__name__)

DEDUPE_KEY_PREFIX = "kyc-poller:published-event:"

# Defaults for the stream's retention: whichever of the two removes more wins.
DEFAULT_STREAM_MAXLEN = 1_000_000
DEFAULT_STREAM_MAX_AGE_SECONDS = 7 * 24 * 3600

# pg_advisory_xact_lock key serializing relays fleet-wide (b"kycrelay" as an int64).
RELAY_LOCK_KEY = 0x6B79_6372_656C_6179

# How long a relay waits for another one to finish its batch (PostgreSQL): normally
# milliseconds; long only if Redis hangs, and then a poll worker should not wait with it.
DEFAULT_LOCK_TIMEOUT_SECONDS = 2.0

_LOCK_NOT_AVAILABLE = "55P03"

# Largest IN (...) list one UPDATE binds (SQLite allows 32,766 parameters).
_MARK_CHUNK = 1000

# KEYS[1] stream, KEYS[2] channel, KEYS[2 + i] dedupe key of event i.
# ARGV[1] dedupe TTL (s), ARGV[2] stream MAXLEN (0: none), ARGV[3] stream max age (ms, 0: none),
# ARGV[4..6] the stream entry's field names (event id, verification id, event),
# then per event i three values: event id, verification id, message.
# Returns {done, error, r_1 .. r_done}: events 1..done were handled, r_i the number of
# subscribers reached or -1 if event i was published before; `error` is "" or why event
# done + 1 was refused (nothing after it was touched). An event is in the stream and on
# the channel exactly when its dedupe key is set: a failed XADD removes the key again.
_PUBLISH_BATCH = """
local ttl = tonumber(ARGV[1])
local maxlen = tonumber(ARGV[2])
local max_age_ms = tonumber(ARGV[3])
local f_id, f_vid, f_event = ARGV[4], ARGV[5], ARGV[6]
local results = {}
local last_id = nil
local failure = ''
for i = 3, #KEYS do
  local arg = 6 + (i - 3) * 3
  local fresh = redis.pcall('SET', KEYS[i], '1', 'NX', 'EX', ttl)
  if type(fresh) == 'table' and fresh.err then
    failure = 'SET: ' .. fresh.err
    break
  end
  if fresh then
    local added
    if maxlen > 0 then
      added = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*',
        f_id, ARGV[arg + 1], f_vid, ARGV[arg + 2], f_event, ARGV[arg + 3])
    else
      added = redis.pcall('XADD', KEYS[1], '*',
        f_id, ARGV[arg + 1], f_vid, ARGV[arg + 2], f_event, ARGV[arg + 3])
    end
    if type(added) == 'table' and added.err then
      redis.call('DEL', KEYS[i])
      failure = 'XADD: ' .. added.err
      break
    end
    last_id = added
    results[#results + 1] = redis.call('PUBLISH', KEYS[2], ARGV[arg + 3])
  else
    results[#results + 1] = -1
  end
end
if last_id and max_age_ms > 0 then
  local newest_ms = tonumber(string.match(last_id, '^(%d+)'))
  if newest_ms and newest_ms > max_age_ms then
    redis.pcall('XTRIM', KEYS[1], 'MINID', '~', string.format('%.0f', newest_ms - max_age_ms))
  end
end
local reply = {#results, failure}
for _, reached in ipairs(results) do
  reply[#reply + 1] = reached
end
return reply
"""


@dataclass(frozen=True)
class RelayReport:
    published: int
    already_published: int
    pending_error: str | None
    # PostgreSQL: another relay held the relay lock longer than `lock_timeout_seconds`
    # (it publishes what this one would have; the beat relay catches anything left).
    busy: bool = False


@dataclass(frozen=True)
class _Pending(OutboxEntry):
    """An unpublished row the ordered relay claimed (its outbox id, to mark it)."""

    id: int


class OutboxRelay:
    """Moves outbox rows to the Redis Stream and pub/sub channel, in id order."""

    def __init__(
        self,
        db: Database,
        redis_client: redis.Redis,
        channel: str,
        *,
        dedupe_ttl: int,
        batch_size: int = 500,
        clock: Callable[[], datetime] = utcnow,
        stream: str | None = None,
        stream_maxlen: int = DEFAULT_STREAM_MAXLEN,
        stream_max_age_seconds: float = DEFAULT_STREAM_MAX_AGE_SECONDS,
        lock_timeout_seconds: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
        signer: EventSigner | None = None,
    ) -> None:
        if stream_maxlen < 0 or stream_max_age_seconds < 0:
            raise ValueError("stream retention must not be negative (0 turns it off)")
        self.db = db
        self.redis = redis_client
        self.channel = channel
        self.dedupe_ttl = dedupe_ttl
        self.batch_size = batch_size
        self.clock = clock
        # Default: `<channel>.stream` (kyc.verification.events.stream for the default channel).
        self.stream = stream or stream_for_channel(channel)
        self.stream_maxlen = stream_maxlen
        self.stream_max_age_seconds = stream_max_age_seconds
        self.lock_timeout_seconds = lock_timeout_seconds
        # Signs each event as it is published (None: unsigned, which readers drop).
        self.signer = signer
        self._publish_batch = redis_client.register_script(_PUBLISH_BATCH)

    def relay_batch(self) -> RelayReport:
        """Publish up to one batch of unpublished events; stop at the first Redis error."""
        with self.db.session() as session, session.begin():
            if not self._take_turn(session):
                log.info("event_relay_busy", waited_seconds=self.lock_timeout_seconds)
                return RelayReport(0, 0, None, busy=True)
            rows = self._claim(session)
            if not rows:
                return RelayReport(0, 0, None)
            try:
                reached, failure = self._publish(rows)
            except redis.RedisError as exc:
                # Unknown whether the script ran: mark nothing. If it did, the dedupe
                # keys turn the next attempt into "already published" (no duplicates).
                reached, failure = [], f"{type(exc).__name__}: {exc}"
            done = rows[: len(reached)]
            self._mark_published(session, [row.id for row in done])
            if failure is not None:
                self._mark_failed(session, rows[len(reached)], failure)
        return _report(done, reached, failure)

    def publish_committed(self, entries: Sequence[OutboxEntry]) -> RelayReport:
        """Publish events that just committed, without the relay's turn, then mark them.

        Only for events whose verifications have no earlier event unpublished (the
        write checked; `worker.domain.outbox`). Whatever is not marked here (Redis
        refused it, the call failed, the marking failed and raised) stays unpublished
        for the ordered relay, whose attempt is then a no-op for what Redis took.
        """
        if not entries:
            return RelayReport(0, 0, None)
        try:
            reached, failure = self._publish(entries)
        except redis.RedisError as exc:
            # Unknown whether the script ran: mark nothing (the ordered relay retries).
            return RelayReport(0, 0, f"{type(exc).__name__}: {exc}")
        done = entries[: len(reached)]
        self._mark_committed_published([entry.event_id for entry in done])
        if failure is not None:
            log.warning(
                "event_publish_failed",
                event_id=entries[len(reached)].event_id,
                verification_id=entries[len(reached)].verification_id,
                error=failure[:500],
                left_to="relay",
            )
        return _report(done, reached, failure)

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
                return RelayReport(published, duplicates, report.pending_error, report.busy)
        return RelayReport(published, duplicates, None)

    def trim_stream(self) -> int:
        """Apply the stream's retention now (XADD trims too; this covers quiet periods).

        Returns how many entries were removed. Trimming is approximate (`~`): Redis
        removes whole internal nodes only, so a few entries past the limits may stay.
        """
        removed = 0
        if self.stream_max_age_seconds > 0:
            seconds, micros = cast(tuple[int, int], self.redis.time())
            now_ms = seconds * 1000 + micros // 1000
            oldest_kept = now_ms - int(self.stream_max_age_seconds * 1000)
            if oldest_kept > 0:
                trimmed = self.redis.xtrim(self.stream, minid=f"{oldest_kept}-0", approximate=True)
                removed += cast(int, trimmed)
        if self.stream_maxlen > 0:
            trimmed = self.redis.xtrim(self.stream, maxlen=self.stream_maxlen, approximate=True)
            removed += cast(int, trimmed)
        return removed

    # ------------------------------------------------------------------ steps

    def _take_turn(self, session: Session) -> bool:
        """Wait for the relay lock (held until commit); False if that took too long.

        Relays take turns, so no relay publishes a later batch before an earlier one.
        SQLite: BEGIN IMMEDIATE already serializes every writer.
        """
        if session.get_bind().dialect.name != "postgresql":
            return True
        timeout_ms = max(1, int(self.lock_timeout_seconds * 1000))
        session.execute(select(func.set_config("lock_timeout", f"{timeout_ms}ms", True)))
        try:
            with session.begin_nested():
                session.execute(select(func.pg_advisory_xact_lock(RELAY_LOCK_KEY)))
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
                return False
            raise
        session.execute(text("SET LOCAL lock_timeout TO DEFAULT"))
        return True

    def _claim(self, session: Session) -> list[_Pending]:
        """The oldest unpublished rows (the relay's turn taken)."""
        postgres = session.get_bind().dialect.name == "postgresql"
        query = (
            select(
                OutboxEvent.id,
                OutboxEvent.event_id,
                OutboxEvent.verification_id,
                OutboxEvent.payload,
            )
            .where(OutboxEvent.published_at.is_(None))
            .order_by(OutboxEvent.id)
            .limit(self.batch_size)
        )
        if postgres:
            query = query.with_for_update(skip_locked=True)
        return [
            _Pending(row.event_id, row.verification_id, row.payload, id=row.id)
            for row in session.execute(query)
        ]

    def _publish(self, rows: Sequence[OutboxEntry]) -> tuple[list[int], str | None]:
        """The one way out: events 1..done into the stream and onto the channel, atomically.

        Returns the subscribers each handled event reached (-1: it was published
        before) and why the next one was refused (None: all handled).
        """
        keys = [self.stream, self.channel]
        args: list[str | int] = [
            self.dedupe_ttl,
            self.stream_maxlen,
            int(self.stream_max_age_seconds * 1000),
            STREAM_FIELD_EVENT_ID,
            STREAM_FIELD_VERIFICATION_ID,
            STREAM_FIELD_EVENT,
        ]
        for row in rows:
            keys.append(DEDUPE_KEY_PREFIX + row.event_id)
            message = self.message(row.payload)
            args += [row.event_id, row.verification_id, message]
        reply = self._publish_batch(keys=keys, args=args)
        done = int(reply[0])
        error = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
        reached = [int(n) for n in reply[2 : 2 + done]]
        return reached, (error or None)

    def message(self, payload: Mapping[str, Any]) -> str:
        """The published form of an outbox event: the document, signed (see module doc)."""
        document = self.signer.sign(payload) if self.signer is not None else payload
        return json.dumps(document, sort_keys=True, separators=(",", ":"))

    def _mark_published(self, session: Session, ids: Sequence[int]) -> None:
        now = self.clock()
        for start in range(0, len(ids), _MARK_CHUNK):
            session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id.in_(ids[start : start + _MARK_CHUNK]))
                .values(
                    published_at=now,
                    publish_attempts=OutboxEvent.publish_attempts + 1,
                    last_error=None,
                )
                .execution_options(synchronize_session=False)
            )

    def _mark_committed_published(self, event_ids: Sequence[str]) -> None:
        """Mark what the direct path published, in a short transaction of its own.

        PostgreSQL: rows another relay holds (it claimed them before this marking) are
        skipped, not waited for: that relay publishes them (a no-op) and marks them.
        """
        if not event_ids:
            return
        now = self.clock()
        with self.db.session() as session, session.begin():
            postgres = session.get_bind().dialect.name == "postgresql"
            for start in range(0, len(event_ids), _MARK_CHUNK):
                chunk = list(event_ids[start : start + _MARK_CHUNK])
                unmarked = select(OutboxEvent.id).where(
                    OutboxEvent.event_id.in_(chunk), OutboxEvent.published_at.is_(None)
                )
                if postgres:
                    unmarked = unmarked.with_for_update(skip_locked=True)
                session.execute(
                    update(OutboxEvent)
                    .where(OutboxEvent.id.in_(unmarked.scalar_subquery()))
                    .values(
                        published_at=now,
                        publish_attempts=OutboxEvent.publish_attempts + 1,
                        last_error=None,
                    )
                    .execution_options(synchronize_session=False)
                )

    def _mark_failed(self, session: Session, row: _Pending, error: str) -> None:
        error = error[:500]
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == row.id)
            .values(publish_attempts=OutboxEvent.publish_attempts + 1, last_error=error)
            .execution_options(synchronize_session=False)
        )
        log.warning(
            "event_publish_failed",
            event_id=row.event_id,
            verification_id=row.verification_id,
            error=error,
        )


def _report(
    done: Sequence[OutboxEntry], reached: Sequence[int], failure: str | None
) -> RelayReport:
    """Log each event Redis took now (not those it had already) and sum up."""
    published = 0
    for entry, n in zip(done, reached, strict=True):
        if n >= 0:
            published += 1
            log.info(
                "event_published",
                event_id=entry.event_id,
                verification_id=entry.verification_id,
                provider=entry.payload.get("provider"),
                to_status=entry.payload.get("to_status"),
                subscribers=n,
            )
    return RelayReport(published, len(reached) - published, failure)


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
