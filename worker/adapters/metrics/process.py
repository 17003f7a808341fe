"""prometheus_client's multiprocess mode under Celery's prefork pool.

A worker's main process makes a fresh directory for its process group before its
pool forks (`prepare_process_metrics`); the children count into files there; a child
that exits is marked dead; the directory goes when the main process exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from worker.config import Settings

log = structlog.get_logger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def default_metrics_base() -> Path:
    return Path(tempfile.gettempdir()) / f"kyc-poller-metrics-{os.getuid()}"


def multiprocess_dir() -> Path | None:
    """The multiprocess directory this process counts into, if any."""
    raw = os.environ.get(MULTIPROC_ENV)
    return Path(raw) if raw and Path(raw).is_dir() else None


def prepare_process_metrics(settings: Settings) -> Path | None:
    """At a worker's or beat's start: its metrics directory, or none when metrics are off."""
    if settings.metrics_port <= 0:
        # Off: nothing is served, so nothing may count into an inherited directory either.
        os.environ.pop(MULTIPROC_ENV, None)
        return None
    return prepare_multiprocess_dir(settings.metrics_dir or None)


def prepare_multiprocess_dir(base: str | Path | None = None) -> Path:
    """A fresh directory for this process group's metric files; prometheus_client uses it.

    Made under `base` (default: a per-user directory in the system temp dir) and named
    after this process's pid; the directories of processes that no longer run are
    removed first, this one is removed when this process exits. Call it in the
    process that forks the others (a worker's main process), before anything counts.
    """
    root = Path(base) if base is not None else default_metrics_base()
    root.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        if entry.is_dir() and entry.name.isdigit() and not _pid_alive(int(entry.name)):
            shutil.rmtree(entry, ignore_errors=True)
    path = root / str(os.getpid())
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    os.environ[MULTIPROC_ENV] = str(path)
    atexit.register(_remove_directory, path, os.getpid())
    if "prometheus_client.values" in sys.modules and not multiprocess_active():
        log.error(
            "metrics_multiprocess_unavailable",
            reason="prometheus_client was imported before the metrics directory was set",
        )
    return path


def multiprocess_active() -> bool:
    """Does prometheus_client count into per-process files (multiprocess mode)?"""
    from prometheus_client import values

    return bool(getattr(values.ValueClass, "_multiprocess", False))


def mark_process_dead(pid: int) -> None:
    """A pool child exits: drop its live-gauge files (its counters stay, as they must)."""
    directory = multiprocess_dir()
    if directory is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def _remove_directory(path: Path, owner: int) -> None:
    if os.getpid() == owner:  # forked children inherit atexit handlers
        shutil.rmtree(path, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
