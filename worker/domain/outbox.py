"""Which committed events may leave at once, without waiting for the ordered relay's turn.

Invariant kept (README "Order"): one verification's events reach Redis in
`verification_version` order. The ordered relay keeps it by taking turns and
publishing in outbox order. A poll batch may instead publish its own events right
after its commit, without any turn, for each verification whose earlier events are
all published already: the write checks that inside its own transaction.

Why that check is enough. A decision is written only if its row is still at the
version it was read at (the version guard), so the poll that wrote event n+1 of a
verification read the row after event n's transaction had committed. The check runs
after that read, in the write's transaction, so it sees event n; "published" is set
only after Redis took the event. Hence:

- check sees every earlier event published: they are all in Redis, event n+1 follows;
- check sees one unpublished (its publisher is slow, stalled or died, or Redis
  refused it): event n+1 is held back for the ordered relay, which publishes in
  outbox order (event n before n+1, as n's id is lower: n+1 was inserted after n
  committed).

Both paths may publish the same event (a stalled publisher waking up after the
ordered relay took over): Redis's dedupe key per event makes the second a no-op,
so nothing is duplicated. That holds while the key lives (`KYC_EVENT_DEDUPE_TTL`, a
day), far beyond the longest a publisher can stall (a task's hard time limit, 120 s).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from worker.domain.decisions import Decision


@dataclass(frozen=True)
class OutboxEntry:
    """One committed event as any relay publishes it."""

    event_id: str
    verification_id: int
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Written:
    """What one batch write committed.

    `held_back`: the verifications among them that had an earlier event still
    unpublished when the write checked (their new events wait for the ordered relay).
    """

    applied: list[Decision]
    held_back: frozenset[int] = frozenset()

    @property
    def events(self) -> list[OutboxEntry]:
        return entries_of(self.applied)

    def split(self) -> tuple[list[OutboxEntry], list[OutboxEntry]]:
        """(events free to go now, events left to the ordered relay)."""
        free: list[OutboxEntry] = []
        held: list[OutboxEntry] = []
        for entry in self.events:
            (held if entry.verification_id in self.held_back else free).append(entry)
        return free, held


def entries_of(decisions: Iterable[Decision]) -> list[OutboxEntry]:
    """The outbox entries these decisions write, in their order."""
    return [
        OutboxEntry(str(d.event["event_id"]), d.stored.id, d.event)
        for d in decisions
        if d.event is not None
    ]


def with_events(decisions: Sequence[Decision]) -> list[int]:
    """Ids of the verifications that get an event from these decisions (what to check)."""
    return list(dict.fromkeys(d.stored.id for d in decisions if d.event is not None))
