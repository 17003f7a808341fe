"""For apps that want the outcome of tracking at once: `KycClient.track` (synchronous).

    from worker.client import KycClient

    client = KycClient("postgresql+psycopg://kyc@db/kyc")       # or KycClient.from_env()
    tracked = client.track("gu1", "val-123")                    # TrackedVerification
    # RequestRejected (a ValueError): unknown provider, bad id or type, type conflict;
    # StorageUnavailableError: the database stayed unreachable for `retry_seconds`.

It runs the same validation and idempotent insert as the `kyc.track_verification`
task, in the caller's process, retrying a database that is briefly down with
backoff (bounded by `retry_seconds`). Tracking is idempotent, so calling again
after any failure is always safe.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from models.db import Database
from worker.config import Settings
from worker.domain.errors import StorageUnavailableError
from worker.services.storage_errors import storage_errors
from worker.services.tracking import TrackedVerification, track_verification


class KycClient:
    def __init__(
        self,
        database_url: str,
        *,
        retry_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db = Database(database_url)
        self.retry_seconds = retry_seconds
        self._sleep = sleep

    @classmethod
    def from_env(cls, *, retry_seconds: float = 30.0) -> KycClient:
        """A client on KYC_DATABASE_URL."""
        return cls(Settings.from_env().database_url, retry_seconds=retry_seconds)

    def track(
        self, provider: str, external_id: str, verification_type: str | None = None
    ) -> TrackedVerification:
        """Store the verification (or find it stored); raise with the reason if refused."""
        started = time.monotonic()
        waited = 0.0
        delay = 0.2
        while True:
            try:
                with storage_errors():
                    return track_verification(self.db, provider, external_id, verification_type)
            except StorageUnavailableError:
                spent = max(time.monotonic() - started, waited)
                if spent + delay > self.retry_seconds:
                    raise
                self._sleep(delay)
                waited += delay
                delay = min(delay * 2, 5.0)

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> KycClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
