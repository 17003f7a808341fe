"""The Celery application (`celery -A tasks.app worker|beat`).

Metrics (worker.adapters.metrics): every worker and beat serves Prometheus `/metrics` on
KYC_METRICS_PORT (0: off) from its main process. A worker prepares its
multiprocess directory at `celeryd_init`, before its pool forks, so the pool's
children count into files the main process merges; it serves once the pool is
up (`worker_ready`); a child that exits is marked dead. Beat also serves the
fleet-wide gauges (verifications by status, backlog, outbox, circuits).

Tasks: every task is a `tasks.guard.GuardedTask`; a worker runs only the tasks of the
queues it consumes (`worker.domain.queues`), so the worker serving apps' queue refuses
internal work.
"""

from __future__ import annotations

import os
from typing import Any

import structlog
from celery import Celery
from celery.signals import (
    beat_init,
    celeryd_after_setup,
    celeryd_init,
    setup_logging,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

from tasks.guard import remember_queues
from worker.adapters import metrics
from worker.adapters.logs import configure_logging
from worker.config import Settings
from worker.runtime import get_runtime, reset_runtime

app = Celery("kyc_poller", include=["tasks.verification_tasks"])
app.config_from_object("celeryconfig")

_settings = Settings.from_env()
configure_logging(_settings.log_format, _settings.log_level)
if _settings.event_signer is None:
    structlog.get_logger(__name__).warning(
        "events_unsigned",
        hint="set KYC_EVENT_SIGNING_KEY (kyc-poller keygen): readers drop unsigned events",
    )

_metrics_server: metrics.MetricsServer | None = None


@setup_logging.connect
def _celery_logging(**_kwargs: Any) -> None:
    """Celery's own records go through kyc-poller's handler and redaction, not Celery's."""
    configure_logging(_settings.log_format, _settings.log_level)


@worker_process_init.connect
def _configure_child_logging(**_kwargs: Any) -> None:
    configure_logging(_settings.log_format, _settings.log_level)


@worker_process_shutdown.connect
@worker_shutdown.connect
def _close_runtime(**_kwargs: Any) -> None:
    """Close the HTTP pool, event loop and connections of this process on a warm shutdown."""
    reset_runtime()


@celeryd_after_setup.connect
def _guard_tasks(instance: Any = None, **_kwargs: Any) -> None:
    """After -Q is applied: this worker runs only the tasks of the queues it consumes."""
    remember_queues(instance.app.amqp.queues.consume_from.keys())


@celeryd_init.connect
def _prepare_worker_metrics(**_kwargs: Any) -> None:
    """Before the pool forks (and before anything counts): the multiprocess directory."""
    metrics.prepare_process_metrics(_settings)


@worker_ready.connect
def _serve_worker_metrics(**_kwargs: Any) -> None:
    _serve_metrics()


@beat_init.connect
def _serve_beat_metrics(**_kwargs: Any) -> None:
    metrics.prepare_process_metrics(_settings)
    if _settings.metrics_port > 0:
        _serve_metrics(get_runtime().fleet_metrics)


@worker_process_shutdown.connect
def _forget_child_metrics(**_kwargs: Any) -> None:
    metrics.mark_process_dead(os.getpid())


@worker_shutdown.connect
def _stop_metrics(**_kwargs: Any) -> None:
    global _metrics_server
    if _metrics_server is not None:
        _metrics_server.stop()
        _metrics_server = None


def _serve_metrics(*collectors: metrics.FleetCollector) -> None:
    global _metrics_server
    if _settings.metrics_port <= 0 or _metrics_server is not None:
        return
    _metrics_server = metrics.start_metrics_server(
        _settings.metrics_port, _settings.metrics_addr, collectors=collectors
    )
