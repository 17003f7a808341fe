"""The scripted sessions of all fake providers, shared by the server threads (one lock)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from devkit.fake_providers.steps import Step, step_to_json


@dataclass
class FakeSession:
    provider: str
    session_id: str
    verification_type: str | None
    steps: tuple[Step, ...]
    # Start the script over after its last step instead of repeating that step forever.
    loop: bool = False
    requests: int = 0
    # The last status word answered: what a "timeout" step answers after its delay.
    last_status: str | None = None
    # Sync requests received (gu1): a step's "after_sync" word answers once there is one.
    syncs: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "id": self.session_id,
            "type": self.verification_type,
            "requests": self.requests,
            "last_status": self.last_status,
            "syncs": self.syncs,
            "script": [step_to_json(step) for step in self.steps],
            "loop": self.loop,
        }


@dataclass(frozen=True)
class Taken:
    """The step one request consumed, and the status word it answers with (if any)."""

    step: Step
    status: str | None
    session_id: str
    verification_type: str | None


class SessionStore:
    """Sessions by (provider, id). Adding an existing session replaces it (counter reset)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[tuple[str, str], FakeSession] = {}

    def add(
        self,
        provider: str,
        session_id: str,
        steps: tuple[Step, ...],
        verification_type: str | None,
        *,
        loop: bool = False,
    ) -> FakeSession:
        session = FakeSession(provider, session_id, verification_type, steps, loop)
        with self._lock:
            self._sessions[(provider, session_id)] = session
        return session

    def take(
        self, provider: str, session_id: str, verification_type: str | None = None
    ) -> Taken | None:
        """Consume the next step; None if there is no such session (of that type)."""
        with self._lock:
            session = self._sessions.get((provider, session_id))
            if session is None:
                return None
            if verification_type is not None and verification_type != session.verification_type:
                return None
            if session.loop:
                step = session.steps[session.requests % len(session.steps)]
            else:
                step = session.steps[min(session.requests, len(session.steps) - 1)]
            session.requests += 1
            if step.fault is None:
                after_sync = step.option("after_sync")
                synced = session.syncs > 0 and isinstance(after_sync, str)
                status = after_sync if synced else step.status
                session.last_status = status
            else:
                status = step.status or session.last_status
                if step.fault == "timeout" and status is not None:
                    session.last_status = status
            return Taken(step, status, session_id, session.verification_type)

    def sync(self, provider: str, session_id: str) -> FakeSession | None:
        """Count a sync request for the session; None if there is no such session."""
        with self._lock:
            session = self._sessions.get((provider, session_id))
            if session is not None:
                session.syncs += 1
            return session

    def sync_count(self, provider: str, session_id: str) -> int:
        with self._lock:
            session = self._sessions.get((provider, session_id))
            return 0 if session is None else session.syncs

    def describe(self, provider: str, session_id: str) -> dict[str, Any] | None:
        with self._lock:
            session = self._sessions.get((provider, session_id))
            return None if session is None else session.describe()

    def request_count(self, provider: str, session_id: str) -> int:
        """Requests that reached the session (authorized ones); 0 for an unknown session."""
        with self._lock:
            session = self._sessions.get((provider, session_id))
            return 0 if session is None else session.requests
