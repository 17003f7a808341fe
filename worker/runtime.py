"""The per-process services a worker needs, built once and on first use.

Celery tasks stay thin: they ask for these and call plain code. Building lazily
keeps imports cheap and makes every forked worker process create its own
connections, event loop and HTTP pool.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import redis

from models import utcnow
from models.db import Database
from worker.adapters.contract import ProviderAdapter
from worker.adapters.event_loop import EventLoopThread
from worker.adapters.metrics import FleetCollector, PrometheusObserver, instruments
from worker.adapters.registry import PROVIDER_NAMES, build_adapters
from worker.adapters.sql_store import SqlStore
from worker.adapters.transport import AiohttpTransport
from worker.config import Settings
from worker.services.governor import ProviderGovernor, RateLimit
from worker.services.learning import ScheduleLearner
from worker.services.polling import PollEngine, PollObserver
from worker.services.relay import OutboxRelay
from worker.services.retention import Retention
from worker.services.safety_net import HintedSafetyNet, SwitchHook
from worker.services.scheduling import Sweeper
from worker.services.tracking import OpenCeiling


@dataclass
class Runtime:
    settings: Settings
    pid: int = field(default_factory=os.getpid)

    @cached_property
    def db(self) -> Database:
        return Database(self.settings.database_url)

    @cached_property
    def store(self) -> SqlStore:
        return SqlStore(self.db)

    @cached_property
    def ceiling(self) -> OpenCeiling:
        """Per-provider ceilings of open verifications, for tracking."""
        return OpenCeiling(
            {name: p.max_open_verifications for name, p in self.settings.providers.items()}
        )

    @cached_property
    def adapters(self) -> dict[str, ProviderAdapter[Any]]:
        return build_adapters(self.settings.providers)

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(
            self.settings.redis_url, socket_timeout=5, socket_connect_timeout=2
        )

    @cached_property
    def governor(self) -> ProviderGovernor:
        rates = {
            name: RateLimit(provider.rate_limit, provider.rate_burst)
            for name, provider in self.settings.providers.items()
        }
        return ProviderGovernor(self.redis, self.settings.breaker, rates)

    @cached_property
    def io_loop(self) -> EventLoopThread:
        return EventLoopThread()

    @cached_property
    def transport(self) -> AiohttpTransport:
        return AiohttpTransport(self.settings.limits)

    @cached_property
    def engine(self) -> PollEngine:
        transport = self.transport
        deadline = self.settings.limits.deadline + 30.0
        return PollEngine(
            self.store,
            self.adapters,
            transport,
            self.settings.policy,
            runner=lambda coroutine: self.io_loop.run(coroutine, timeout=deadline),
            governor=self.governor,
            clock=utcnow,
            max_in_flight=self.settings.limits.max_connections,
            schedule_source=self.learner.plan if self.learner is not None else None,
            observer=self.observer,
            publisher=self.relay if self.settings.relay_direct else None,
            safety_net=self.safety_net,
        )

    @cached_property
    def safety_net(self) -> HintedSafetyNet | None:
        """The adapting safety net (None when KYC_HINT_STRETCH_FACTOR is 1)."""
        if not self.settings.safety_net.enabled or self.settings.policy.schedule is None:
            return None
        observer = self.observer
        return HintedSafetyNet(
            self.redis,
            self.settings.safety_net,
            PROVIDER_NAMES,
            on_switch=observer if isinstance(observer, SwitchHook) else None,
        )

    @cached_property
    def observer(self) -> PollObserver:
        """The engine's metrics (served by the worker's main process: worker.metrics)."""
        return PrometheusObserver(instruments())

    @cached_property
    def fleet_metrics(self) -> FleetCollector:
        """Beat's fleet-wide gauges: database counts and governor state, cached between scrapes."""
        return FleetCollector(
            self.db,
            self.governor,
            PROVIDER_NAMES,
            cache_seconds=self.settings.metrics_cache_seconds,
            safety_net=self.safety_net,
        )

    @cached_property
    def learner(self) -> ScheduleLearner | None:
        """Adaptive mode only: the schedule learned from the transition history."""
        static = self.settings.policy.schedule
        if self.settings.schedule_mode != "adaptive" or static is None:
            return None
        return ScheduleLearner(
            self.store,
            static,
            refresh_seconds=self.settings.adaptive_refresh_seconds,
            history_seconds=self.settings.adaptive_history_seconds,
            clock=utcnow,
        )

    @cached_property
    def sweeper(self) -> Sweeper:
        return Sweeper(
            self.store,
            PROVIDER_NAMES,
            governor=self.governor,
            batch_size=self.settings.poll_batch_size,
            max_claims=self.settings.sweep_max_claims,
            lease_seconds=self.settings.claim_lease_seconds,
            interval_seconds=self.settings.schedule_interval,
        )

    @cached_property
    def relay(self) -> OutboxRelay:
        return OutboxRelay(
            self.db,
            self.redis,
            self.settings.events_channel,
            dedupe_ttl=self.settings.event_dedupe_ttl,
            batch_size=self.settings.relay_batch_size,
            stream=self.settings.effective_events_stream,
            stream_maxlen=self.settings.events_stream_maxlen,
            stream_max_age_seconds=self.settings.events_stream_max_age_seconds,
            lock_timeout_seconds=self.settings.relay_lock_timeout_seconds,
            signer=self.settings.event_signer,
        )

    @cached_property
    def retention(self) -> Retention:
        return Retention(
            self.db,
            outbox_max_age_seconds=self.settings.outbox_retention_seconds,
            payload_max_age_seconds=self.settings.payload_retention_seconds,
            batch_size=self.settings.retention_batch_size,
            time_budget_seconds=self.settings.retention_time_budget_seconds,
        )

    def close(self) -> None:
        """Release what was built: HTTP pool, event loop, database pool, Redis connections."""
        built = self.__dict__
        if "transport" in built and "io_loop" in built:
            # Best effort: the process is going away.
            with contextlib.suppress(Exception):
                self.io_loop.run(self.transport.close(), timeout=5)
        if "io_loop" in built:
            self.io_loop.stop()
        if "db" in built:
            self.db.dispose()
        if "redis" in built:
            self.redis.close()


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
    """Close and forget the cached runtime (tests change the environment between cases)."""
    global _runtime
    with _lock:
        if _runtime is not None and _runtime.pid == os.getpid():
            _runtime.close()
        _runtime = None
