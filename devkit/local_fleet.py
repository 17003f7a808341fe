"""Run real Celery worker and beat processes on this machine (the demo and end-to-end tests).

Each process runs in its own session with its output in a log file, so it can
be stopped (or killed, to play a crashed worker) as a whole.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

from celery import Celery
from sqlalchemy import func, select

from devkit.embedded_redis import free_port
from models import OutboxEvent, Transition, Verification
from models.db import create_db_engine
from worker.domain.queues import CONTROL_QUEUE, LEGACY_DEFAULT_QUEUE, POLL_QUEUE, PUBLIC_QUEUE

__all__ = ["free_port"]  # and the start_* functions below; free_port lives in embedded_redis

CELERY = [sys.executable, "-m", "celery", "-A", "tasks.app"]


class ChildProcess:
    """A child process whose output goes to a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("ab")
        self.proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group: a worker dying mid-task."""
        if self.running:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._log.close()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (Celery's warm shutdown), then SIGKILL if it does not exit in time."""
        if self.running:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# How the fleet runs its workers: docker-compose.yml runs the same arguments (tested).
POLL_WORKER_CONCURRENCY = 4
POLL_WORKER_ARGS = [
    "worker",
    "--loglevel=INFO",
    # Poll batches and retention only: apps' requests have a worker of their own.
    f"--queues={POLL_QUEUE}",
]
# Apps' requests (tracking, poll-now): their own queue, served by a worker that runs
# nothing else (and Celery's default queue, for apps that send without a queue).
INTAKE_WORKER_ARGS = [
    "worker",
    "--loglevel=INFO",
    f"--queues={PUBLIC_QUEUE},{LEGACY_DEFAULT_QUEUE}",
    "--pool=threads",
    "--concurrency=4",
    "--hostname=intake@%h",
]
CONTROL_WORKER_ARGS = [
    "worker",
    "--loglevel=INFO",
    f"--queues={CONTROL_QUEUE}",
    "--pool=solo",
    "--hostname=control@%h",
]


def start_worker(
    env: dict[str, str],
    log_dir: Path,
    *,
    concurrency: int = POLL_WORKER_CONCURRENCY,
    name: str = "worker",
) -> ChildProcess:
    """A poll worker as the README deploys it (prefork; each process polls whole batches)."""
    argv = [
        *CELERY,
        *POLL_WORKER_ARGS,
        f"--concurrency={concurrency}",
        f"--hostname={name}@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    return ChildProcess(name, argv, env, log_dir / f"{name}.log")


def start_control_worker(env: dict[str, str], log_dir: Path) -> ChildProcess:
    """The worker for beat's own tasks (sweep, relay): its own queue, never behind polls."""
    argv = [*CELERY, *CONTROL_WORKER_ARGS, "--without-gossip", "--without-mingle"]
    return ChildProcess("control", argv, env, log_dir / "control.log")


def start_intake_worker(env: dict[str, str], log_dir: Path) -> ChildProcess:
    """The worker for apps' requests: `kyc.public` (and `celery`), and nothing else."""
    argv = [*CELERY, *INTAKE_WORKER_ARGS, "--without-gossip", "--without-mingle"]
    return ChildProcess("intake", argv, env, log_dir / "intake.log")


def start_beat(env: dict[str, str], log_dir: Path) -> ChildProcess:
    schedule = str(log_dir / "celerybeat-schedule")
    argv = [*CELERY, "beat", "--loglevel=INFO", f"--schedule={schedule}"]
    return ChildProcess("beat", argv, env, log_dir / "beat.log")


SERVICE_ARGS = ["-m", "worker.entrypoints.cli", "serve"]


def start_service(
    env: dict[str, str], log_dir: Path, *, port: int, host: str = "127.0.0.1", name: str = "service"
) -> ChildProcess:
    """The HTTP service (`kyc-poller serve`): webhooks, the app API, health, metrics."""
    argv = [sys.executable, *SERVICE_ARGS, "--host", host, "--port", str(port)]
    return ChildProcess(name, argv, env, log_dir / f"{name}.log")


def wait_for_http(url: str, timeout: float = 30.0, process: ChildProcess | None = None) -> None:
    """Until `url` answers 200 (RuntimeError with the process's log tail if it never does)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and not process.running:
            break
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    tail = process.log_tail() if process is not None else ""
    raise RuntimeError(f"{url} did not answer 200 within {timeout:g}s\n{tail}")


def start_scheduler(env: dict[str, str], log_dir: Path) -> list[ChildProcess]:
    """Beat, the control worker that runs its tasks, and the intake worker for apps'
    requests: everything of the fleet but its poll workers."""
    return [
        start_beat(env, log_dir),
        start_control_worker(env, log_dir),
        start_intake_worker(env, log_dir),
    ]


def track(broker_url: str, provider: str, external_id: str, vtype: str | None = None) -> None:
    """Send `kyc.track_verification` the way an app does: by name, to apps' queue."""
    client = Celery(broker=broker_url, set_as_current=False)
    try:
        client.send_task(
            "kyc.track_verification", (provider, external_id, vtype), queue=PUBLIC_QUEUE
        )
    finally:
        client.close()


def database_summary(database_url: str) -> tuple[dict[tuple[str, str], str], int, int]:
    """(status by (provider, external id), transitions committed, events not yet published)."""
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as connection:
            statuses = {
                (row.provider, row.external_id): row.status
                for row in connection.execute(
                    select(Verification.provider, Verification.external_id, Verification.status)
                )
            }
            transitions = connection.scalar(select(func.count()).select_from(Transition)) or 0
            unpublished = connection.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.published_at.is_(None))
            )
        return statuses, transitions, unpublished or 0
    finally:
        engine.dispose()
