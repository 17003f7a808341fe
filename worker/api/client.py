"""For apps that want the outcome of tracking at once: `KycClient.track` (synchronous).

    from worker.api import KycClient

    client = KycClient("postgresql+psycopg://kyc_app@db/kyc")   # or KycClient.from_env()
    tracked = client.track("gu1", "val-123")                    # TrackedVerification
    # RequestRejected (a ValueError): unknown provider, bad id or type, type conflict;
    # StorageUnavailableError: the database stayed unreachable for `retry_seconds`.

It runs the same validation and idempotent insert as the `kyc.track_verification`
task, in the caller's process, retrying a database that is briefly down with
backoff (bounded by `retry_seconds`). Tracking is idempotent, so calling again
after any failure is always safe.

Importing this module is cheap: it takes the database URL explicitly (no fleet
settings are read) and loads the tracking rules (the provider adapters' id rules)
and the database driver on the first `track()`, not at import.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from worker.domain.errors import StorageUnavailableError

if TYPE_CHECKING:
    from models.db import Database
    from worker.services.tracking import OpenCeiling, TrackedVerification

DATABASE_URL_VARIABLE = "KYC_DATABASE_URL"


class KycClient:
    def __init__(
        self,
        database_url: str,
        *,
        retry_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        max_open_per_provider: Mapping[str, int] | None = None,
    ) -> None:
        """`max_open_per_provider`: the fleet's ceilings (`<PROVIDER>_MAX_OPEN_VERIFICATIONS`)
        to hold this client to as well; None: none (a client with database access could
        insert past them anyway: the ceiling guards the queue and the HTTP API)."""
        if not database_url:
            raise ValueError("KycClient needs a database URL")
        self.database_url = database_url
        self.retry_seconds = retry_seconds
        self._sleep = sleep
        self._db: Database | None = None
        self._limits = dict(max_open_per_provider or {})
        self._ceiling: OpenCeiling | None = None

    @classmethod
    def from_env(cls, *, retry_seconds: float = 30.0) -> KycClient:
        """A client on KYC_DATABASE_URL, with the fleet's default when it is unset."""
        from models.db import DEFAULT_DATABASE_URL

        url = os.environ.get(DATABASE_URL_VARIABLE) or DEFAULT_DATABASE_URL
        return cls(url, retry_seconds=retry_seconds)

    @property
    def db(self) -> Database:
        if self._db is None:
            from models.db import Database

            self._db = Database(self.database_url)
        return self._db

    def track(
        self, provider: str, external_id: str, verification_type: str | None = None
    ) -> TrackedVerification:
        """Store the verification (or find it stored); raise with the reason if refused."""
        from worker.services.storage_errors import storage_errors
        from worker.services.tracking import OpenCeiling, track_verification

        if self._limits and self._ceiling is None:
            self._ceiling = OpenCeiling(self._limits)

        started = time.monotonic()
        waited = 0.0
        delay = 0.2
        while True:
            try:
                with storage_errors():
                    return track_verification(
                        self.db, provider, external_id, verification_type, ceiling=self._ceiling
                    )
            except StorageUnavailableError:
                spent = max(time.monotonic() - started, waited)
                if spent + delay > self.retry_seconds:
                    raise
                self._sleep(delay)
                waited += delay
                delay = min(delay * 2, 5.0)

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()

    def __enter__(self) -> KycClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
