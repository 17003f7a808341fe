"""Moved to `worker.api.client` (import it as `from worker.api import KycClient`); re-exported
for one release."""

from worker.api.client import KycClient

__all__ = ["KycClient"]
