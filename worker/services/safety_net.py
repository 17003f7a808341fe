"""The adapting safety net's record, fleet-wide in Redis, and its state per provider.

The rule is `worker.domain.safety_net`; this keeps what it reads and tells the fleet:
- `record_transitions` (the poll engine, after a batch's write): per transition a poll
  found, whether a hint had come for it (`worker.services.hints` keeps each
  verification's last hint), pushed to `kyc-poller:hintshare:<provider>` (a list, newest
  first, trimmed to the window), and the time of the latest unhinted one in
  `kyc-poller:hintshare:<provider>:unhinted`; the time of the provider's last hint is
  `worker.services.hints`'s `kyc-poller:hints:<provider>:last`;
- `stretches` (the engine, per batch): each provider's factor now, read in one pipelined
  round trip and reused for `refresh_seconds`, so a batch costs nothing most of the time;
- a switch (normal -> stretched, or back) is logged and counted once for the fleet: the
  state is swapped in `kyc-poller:safety-net:<provider>` and only the process that saw
  the old value reports it.

Failure: Redis unreadable -> every factor 1 (polling alone: the safe side) and a warning;
a record that cannot be written is lost (a transition uncounted), never the poll.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

import redis
import structlog
from redis.exceptions import RedisError

from worker.domain.safety_net import (
    FoundTransition,
    HintRecord,
    NetState,
    SafetyNetSettings,
    assess,
    was_hinted,
)
from worker.services.hints import HINT_COUNT_PREFIX, last_hints, stamp_seconds

log = structlog.get_logger(__name__)

SHARE_PREFIX = "kyc-poller:hintshare:"
STATE_PREFIX = "kyc-poller:safety-net:"
# The record outlives a quiet week (then it starts again from "too few transitions").
RECORD_TTL_SECONDS = 7 * 24 * 3600
STRETCHED, NORMAL = "stretched", "normal"


@runtime_checkable
class SwitchHook(Protocol):
    def safety_net_switched(self, provider: str, stretched: bool) -> None:
        """The provider's safety net changed state (reported by one process of the fleet)."""


class HintedSafetyNet:
    """Per provider: the record of hinted transitions, and the stretch factor it allows now."""

    def __init__(
        self,
        client: redis.Redis,
        settings: SafetyNetSettings,
        providers: Sequence[str],
        *,
        refresh_seconds: float = 10.0,
        clock: Callable[[], float] = time.time,
        on_switch: SwitchHook | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.providers = tuple(providers)
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self.on_switch = on_switch
        self._cached: dict[str, float] = {}
        self._cached_at = -float("inf")

    # -- what the engine writes ----------------------------------------------------------

    def record_transitions(self, found: Iterable[FoundTransition]) -> int:
        """Flag each found transition hinted or not; returns how many were recorded."""
        transitions = list(found)
        if not transitions or not self.settings.enabled:
            return 0
        hints = last_hints(self.client, [t.verification_id for t in transitions])
        now = self.clock()
        flags: dict[str, list[bool]] = {}
        for transition in transitions:
            hinted = was_hinted(hints.get(transition.verification_id), transition.status_since)
            flags.setdefault(transition.provider, []).append(hinted)
        with self.client.pipeline(transaction=False) as pipe:
            for provider, provider_flags in flags.items():
                key = f"{SHARE_PREFIX}{provider}"
                pipe.lpush(key, *("1" if flag else "0" for flag in provider_flags))
                pipe.ltrim(key, 0, self.settings.window - 1)
                pipe.expire(key, RECORD_TTL_SECONDS)
                if not all(provider_flags):
                    pipe.set(f"{key}:unhinted", f"{now:.3f}", ex=RECORD_TTL_SECONDS)
            pipe.execute()
        return len(transitions)

    # -- what the engine reads -----------------------------------------------------------

    def stretches(self) -> dict[str, float]:
        """Each stretched provider's factor now (a provider absent: 1), cached briefly."""
        if not self.settings.enabled:
            return {}
        if time.monotonic() - self._cached_at < self.refresh_seconds:
            return self._cached
        try:
            states = self.states()
        except RedisError as exc:
            log.warning("safety_net_read_failed", error_type=type(exc).__name__)
            states = {}
        self._cached = {
            provider: state.factor(self.settings)
            for provider, state in states.items()
            if state.stretched
        }
        self._cached_at = time.monotonic()
        return self._cached

    def states(self) -> dict[str, NetState]:
        """Every provider's state, read and assessed now; switches reported once for the fleet."""
        states = self.peek()
        self._swap(states)
        return states

    def peek(self) -> dict[str, NetState]:
        """Every provider's state now, without reporting a switch (metrics, the CLI)."""
        return {
            provider: assess(record, self.settings) for provider, record in self.records().items()
        }

    def records(self) -> dict[str, HintRecord]:
        with self.client.pipeline(transaction=False) as pipe:
            for provider in self.providers:
                key = f"{SHARE_PREFIX}{provider}"
                pipe.lrange(key, 0, self.settings.window - 1)
                pipe.get(f"{HINT_COUNT_PREFIX}{provider}:last")
                pipe.get(f"{key}:unhinted")
            replies = pipe.execute()
        records: dict[str, HintRecord] = {}
        for index, provider in enumerate(self.providers):
            recent, last_hint, unhinted = replies[3 * index : 3 * index + 3]
            records[provider] = HintRecord(
                recent=tuple(_flag(value) for value in recent),
                last_hint_at=stamp_seconds(last_hint),
                last_unhinted_at=stamp_seconds(unhinted),
            )
        return records

    def _swap(self, states: Mapping[str, NetState]) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            for provider, state in states.items():
                pipe.set(
                    f"{STATE_PREFIX}{provider}",
                    STRETCHED if state.stretched else NORMAL,
                    ex=RECORD_TTL_SECONDS,
                    get=True,
                )
            previous = pipe.execute()
        for (provider, state), old in zip(states.items(), previous, strict=True):
            old_text = old.decode() if isinstance(old, bytes) else old
            new_text = STRETCHED if state.stretched else NORMAL
            if old_text == new_text or (old_text is None and not state.stretched):
                continue
            log.info(
                "safety_net_stretched" if state.stretched else "safety_net_restored",
                provider=provider,
                factor=state.factor(self.settings),
                hinted_share=round(state.share, 3),
                transitions=state.transitions,
                reason=state.reason.value,
            )
            if self.on_switch is not None:
                self.on_switch.safety_net_switched(provider, state.stretched)


def _flag(value: object) -> bool:
    return value in (b"1", "1")
