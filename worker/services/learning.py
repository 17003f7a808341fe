"""Adaptive mode: the schedule learned from kyc-poller's own transition history.

Every `refresh_seconds` the learner reads how long each provider's verifications
stayed in each status (`SqlStore.status_durations`) and rebuilds the plan with
`worker.domain.adaptive.adaptive_plan`: polls placed where changes land, within the
static schedule's request budget and each status's maximum gap. The history is read as
polled with the plan this learner built last (the static one at first): a fresh process
in a fleet that ran a learned plan misreads one build's worth (see the domain module's
GUESS). With too little history for a (provider, status) the static schedule stays; if
reading or learning fails, the last plan stays (and the static one until a first success).
A build costs up to about a second of CPU per provider (the optimiser is bounded).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from worker.domain.adaptive import AdaptiveSettings, DurationHistory, adaptive_plan
from worker.domain.schedule import SchedulePlan
from worker.domain.statuses import VerificationStatus

log = structlog.get_logger(__name__)


class DurationSource(Protocol):
    def status_durations(
        self, *, now: datetime, since: datetime, limit: int = ...
    ) -> Mapping[tuple[str, VerificationStatus], DurationHistory]: ...


class ScheduleLearner:
    def __init__(
        self,
        source: DurationSource,
        static: SchedulePlan,
        *,
        refresh_seconds: float,
        history_seconds: float,
        clock: Callable[[], datetime],
        settings: AdaptiveSettings | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.static = static
        self.refresh_seconds = refresh_seconds
        self.history_seconds = history_seconds
        self.clock = clock
        self.settings = settings
        self._monotonic = monotonic
        self._plan = static
        self._built_at: float | None = None

    def plan(self) -> SchedulePlan:
        """The current learned plan, rebuilt when older than `refresh_seconds`."""
        now_mono = self._monotonic()
        if self._built_at is not None and now_mono - self._built_at < self.refresh_seconds:
            return self._plan
        self._built_at = now_mono
        try:
            now = self.clock()
            histories = self.source.status_durations(
                now=now, since=now - timedelta(seconds=self.history_seconds)
            )
            self._plan = adaptive_plan(self.static, histories, self.settings, self._plan)
        except Exception as exc:  # a failed refresh keeps the last plan
            log.warning("adaptive_schedule_refresh_failed", error_type=type(exc).__name__)
            return self._plan
        learned = sorted(
            f"{provider}/{status.value}"
            for provider, per in self._plan.providers.items()
            for status in per
            if per[status] is not self.static.schedule_for(provider, status)
        )
        log.info("adaptive_schedule_built", learned=learned)
        return self._plan
