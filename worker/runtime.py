"""The per-process services a worker needs, built once and on first use.

Celery tasks stay thin: they ask for these and call plain functions. Building
lazily keeps imports cheap and makes every forked worker process create its
own connections.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import cached_property

import redis

from models.db import Database
from worker.adapters import build_adapters
from worker.adapters.base import ProviderAdapter
from worker.config import Settings
from worker.services.polling import Poller
from worker.services.relay import OutboxRelay


@dataclass
class Runtime:
    settings: Settings
    pid: int = field(default_factory=os.getpid)

    @cached_property
    def db(self) -> Database:
        return Database(self.settings.database_url)

    @cached_property
    def adapters(self) -> dict[str, ProviderAdapter]:
        return build_adapters(self.settings)

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(
            self.settings.redis_url, socket_timeout=5, socket_connect_timeout=2
        )

    @cached_property
    def poller(self) -> Poller:
        return Poller(self.db, self.adapters, self.settings)

    @cached_property
    def relay(self) -> OutboxRelay:
        return OutboxRelay(
            self.db,
            self.redis,
            self.settings.events_channel,
            dedupe_ttl=self.settings.event_dedupe_ttl,
            batch_size=self.settings.relay_batch_size,
        )


_lock = threading.Lock()
_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    """This process's runtime, rebuilt after a fork."""
    global _runtime
    with _lock:
        if _runtime is None or _runtime.pid != os.getpid():
            _runtime = Runtime(Settings.from_env())
        return _runtime


def reset_runtime() -> None:
    """Forget the cached runtime (tests change the environment between cases)."""
    global _runtime
    with _lock:
        _runtime = None
