"""Moved to `worker.adapters.metrics` (split by job); re-exported for one release."""

from worker.adapters.metrics import *  # noqa: F403
from worker.adapters.metrics import __all__ as __all__
