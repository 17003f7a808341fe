"""Things kyc-poller asked a provider to do besides the status check (gu1's sync).

An action is not a transition: it changes no status and produces no event
(one status change = one transition + one event stays true). It is recorded
(table `verification_actions`) with the write of the poll it came with, so
`history` can show it between the transitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

# Outcome of an action the provider took: any other outcome is the ErrorCode of its failure.
ACCEPTED = "accepted"
MAX_DETAIL = 128


class ActionKind(StrEnum):
    SYNC = "sync"  # gu1: POST /api/kyc/validations/{id}/sync {"force": true}


@dataclass(frozen=True)
class ActionRecord:
    """One action as stored: what, how it went, and when."""

    kind: ActionKind
    outcome: str  # "accepted", or the ErrorCode value of why it failed
    occurred_at: datetime
    http_status: int | None = None
    # The provider's status word in its answer, if it gave one (cleaned, bounded).
    detail: str | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome == ACCEPTED
