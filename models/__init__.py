"""Database models: verifications, their transition history, actions and the event outbox."""

from models.action import VerificationAction
from models.base import Base, utcnow
from models.outbox import OutboxEvent
from models.transition import Transition
from models.verification import Verification
from worker.domain.statuses import TERMINAL_STATUSES, VerificationStatus

__all__ = [
    "TERMINAL_STATUSES",
    "Base",
    "OutboxEvent",
    "Transition",
    "Verification",
    "VerificationAction",
    "VerificationStatus",
    "utcnow",
]
