"""The Celery application (`celery -A tasks.app worker|beat`)."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from worker.config import Settings
from worker.logging_setup import configure_logging

app = Celery("kyc_poller", include=["tasks.verification_tasks"])
app.config_from_object("celeryconfig")

_settings = Settings.from_env()
configure_logging(_settings.log_format, _settings.log_level)


@worker_process_init.connect
def _configure_child_logging(**_kwargs: Any) -> None:
    configure_logging(_settings.log_format, _settings.log_level)
