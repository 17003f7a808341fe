"""Moved to `worker.adapters.logs`; re-exported for one release."""

from worker.adapters.logs import REDACTED, configure_logging, redact_sensitive

__all__ = ["REDACTED", "configure_logging", "redact_sensitive"]
