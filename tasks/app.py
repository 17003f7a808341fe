"""The Celery application (`celery -A tasks.app worker|beat`)."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown, worker_shutdown

from worker.config import Settings
from worker.logging_setup import configure_logging
from worker.runtime import reset_runtime

app = Celery("kyc_poller", include=["tasks.verification_tasks"])
app.config_from_object("celeryconfig")

_settings = Settings.from_env()
configure_logging(_settings.log_format, _settings.log_level)


@worker_process_init.connect
def _configure_child_logging(**_kwargs: Any) -> None:
    configure_logging(_settings.log_format, _settings.log_level)


@worker_process_shutdown.connect
@worker_shutdown.connect
def _close_runtime(**_kwargs: Any) -> None:
    """Close the HTTP pool, event loop and connections of this process on a warm shutdown."""
    reset_runtime()
