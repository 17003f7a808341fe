"""The provider governor: a fleet-wide rate limit and circuit breaker per provider, in Redis.

Every worker asks the governor before calling a provider and tells it how the
calls went, one Lua round trip each per batch, so the whole fleet shares:

- **a rate limit** (GCRA: `rate_limit` requests/s with `rate_burst` above it;
  0 = none). `admit(provider, n)` grants up to n calls now and says how long
  until the next one. A 429 with Retry-After pauses the provider for everyone.
- **a circuit breaker**. Closed: faults of the provider as a whole (timeouts,
  5xx, connection errors, refused credentials) are counted in a window; at
  `min_faults` faults making up `fault_ratio` of the window's calls it opens.
  Open: nothing is called (rows are deferred, not counted against) for a
  cooldown that doubles on each failed probe, up to a maximum. Half-open: at
  most `probes` calls test it; a success closes it, a fault opens it again. A
  probe whose worker died is replaced after `probe_timeout`.

- **a sync cap** (gu1's sync: `admit_sync`): a second GCRA bucket per provider,
  `per_minute` syncs with no burst above one, so no 60 s window holds more than
  `per_minute` of them fleet-wide; each sync also takes a token of the provider's
  rate limit (it is a request like any other), in the same atomic step.

State changes are returned to the caller, which logs them
(`circuit_opened`, `circuit_half_open`, `circuit_closed`). `status()` shows it all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import redis

KEY_PREFIX = "kyc-poller:governor:"


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerSettings:
    window_seconds: float = 30.0
    min_faults: int = 5
    fault_ratio: float = 0.5
    cooldown_seconds: float = 5.0
    max_cooldown_seconds: float = 60.0
    probes: int = 3
    probe_timeout_seconds: float = 30.0


@dataclass(frozen=True)
class RateLimit:
    per_second: float = 0.0  # 0: no limit
    burst: int = 1


@dataclass(frozen=True)
class Admission:
    """How many calls may go now, and when to ask again for the rest."""

    granted: int
    wait_seconds: float
    state: CircuitState
    # Why fewer than asked were granted: circuit_open | paused | rate_limited | "".
    limited_by: str
    changed_to: CircuitState | None = None


@dataclass(frozen=True)
class ProviderStatus:
    provider: str
    state: CircuitState
    open_for_seconds: float
    window_faults: int
    window_successes: int
    paused_for_seconds: float
    rate: RateLimit
    # An operator paused it (`kyc-poller pause`): nothing is claimed or called until resumed.
    paused_by_operator: bool = False


# KEYS: breaker hash, GCRA tat key, pause key, operator pause key.
# ARGV: now ms, wanted, emission interval ms (0: no limit), tolerance ms, probes, probe timeout ms.
# Times are milliseconds with fractions (a 400/s interval is 2.5 ms: rounding it up would cap
# every rate at 1000/s). Half-open probes are spent only on calls actually granted, after the
# pause and the rate limit have had their say.
# Returns {granted, wait ms, state, changed state or "", limited by}.
_ADMIT = """
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
if redis.call('EXISTS', KEYS[4]) == 1 then
  return {0, 10000, redis.call('HGET', KEYS[1], 'state') or 'closed', '', 'operator_paused'}
end
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local changed = ''
if state == 'open' then
  local reopen = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
  if now < reopen then return {0, math.ceil(reopen - now), state, '', 'circuit_open'} end
  state = 'half_open'
  changed = 'half_open'
  redis.call('HSET', KEYS[1], 'state', state, 'probes_left', ARGV[5], 'probe_at', ARGV[1])
end
local probes = nil
if state == 'half_open' then
  probes = tonumber(redis.call('HGET', KEYS[1], 'probes_left') or '0')
  if probes <= 0 then
    local since = tonumber(redis.call('HGET', KEYS[1], 'probe_at') or '0')
    local timeout = tonumber(ARGV[6])
    if now - since < timeout then
      return {0, math.ceil(timeout - (now - since)), state, changed, 'circuit_open'}
    end
    probes = tonumber(ARGV[5])
  end
  if n > probes then n = probes end
end
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
if paused > now then return {0, math.ceil(paused - now), state, changed, 'paused'} end
local granted = n
local wait = 0
local limited = ''
local interval = tonumber(ARGV[3])
if interval > 0 then
  local tolerance = tonumber(ARGV[4])
  local tat = tonumber(redis.call('GET', KEYS[2]) or '0')
  if tat < now then tat = now end
  local room = math.floor((now + tolerance - tat) / interval)
  if room < 0 then room = 0 end
  granted = math.min(n, room)
  if granted > 0 then
    tat = tat + granted * interval
    redis.call('SET', KEYS[2], string.format('%.3f', tat),
               'PX', math.ceil(tat - now + tolerance) + 1000)
  end
  if granted < n then
    wait = math.max(math.ceil(tat + interval - tolerance - now), 1)
    limited = 'rate_limited'
  end
end
if probes ~= nil and granted > 0 then
  redis.call('HSET', KEYS[1], 'probes_left', probes - granted, 'probe_at', ARGV[1])
end
return {granted, wait, state, changed, limited}
"""

# KEYS: breaker hash, pause key.
# ARGV: now ms, successes, faults, window ms, min faults, ratio per mille, cooldown ms,
#       max cooldown ms, pause ms (0: none).
# Returns the new state when it changed, else "".
_RECORD = """
local now = tonumber(ARGV[1])
local ok = tonumber(ARGV[2])
local bad = tonumber(ARGV[3])
local pause = tonumber(ARGV[9])
if pause > 0 then
  local current = tonumber(redis.call('GET', KEYS[2]) or '0')
  if now + pause > current then redis.call('SET', KEYS[2], now + pause, 'PX', pause) end
end
local function open(opens)
  local cooldown = math.min(tonumber(ARGV[7]) * math.pow(2, opens), tonumber(ARGV[8]))
  redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', now + cooldown,
             'opens', opens + 1, 'ok', 0, 'bad', 0, 'window_start', now)
  return 'open'
end
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'open' then return '' end
if state == 'half_open' then
  local opens = tonumber(redis.call('HGET', KEYS[1], 'opens') or '0')
  if bad > 0 then return open(opens) end
  if ok > 0 then
    redis.call('HSET', KEYS[1], 'state', 'closed', 'opens', 0, 'ok', 0, 'bad', 0,
               'window_start', now)
    return 'closed'
  end
  return ''
end
local start = tonumber(redis.call('HGET', KEYS[1], 'window_start') or '0')
if now - start > tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], 'window_start', now, 'ok', 0, 'bad', 0)
end
local total_ok = redis.call('HINCRBY', KEYS[1], 'ok', ok)
local total_bad = redis.call('HINCRBY', KEYS[1], 'bad', bad)
if total_bad >= tonumber(ARGV[5]) and total_bad * 1000 >= tonumber(ARGV[6]) * (total_ok + total_bad)
then
  return open(0)
end
return ''
"""


# KEYS: sync tat key, the provider's rate tat key.
# ARGV: now ms, wanted, sync interval ms, provider interval ms (0: no limit), its tolerance ms.
# Grants as many as both buckets allow, and takes them from both. Returns the number granted.
_ADMIT_SYNC = """
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local function room(key, interval, tolerance)
  if interval <= 0 then return n, now end
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local r = math.floor((now + tolerance - tat) / interval)
  if r < 0 then r = 0 end
  return r, tat
end
local sync_interval = tonumber(ARGV[3])
local rate_interval = tonumber(ARGV[4])
local rate_tolerance = tonumber(ARGV[5])
local sync_room, sync_tat = room(KEYS[1], sync_interval, sync_interval)
local rate_room, rate_tat = room(KEYS[2], rate_interval, rate_tolerance)
local granted = math.min(n, sync_room, rate_room)
if granted > 0 then
  sync_tat = sync_tat + granted * sync_interval
  redis.call('SET', KEYS[1], string.format('%.3f', sync_tat),
             'PX', math.ceil(sync_tat - now + sync_interval) + 1000)
  if rate_interval > 0 then
    rate_tat = rate_tat + granted * rate_interval
    redis.call('SET', KEYS[2], string.format('%.3f', rate_tat),
               'PX', math.ceil(rate_tat - now + rate_tolerance) + 1000)
  end
end
return granted
"""


class ProviderGovernor:
    """Fleet-wide admission and fault accounting per provider (see the module docstring)."""

    def __init__(
        self,
        client: redis.Redis,
        breaker: BreakerSettings,
        rates: Mapping[str, RateLimit],
        *,
        clock: Callable[[], float] = time.time,
        prefix: str = KEY_PREFIX,
    ) -> None:
        self.redis = client
        self.breaker = breaker
        self.rates = dict(rates)
        self.clock = clock
        self.prefix = prefix
        self._admit = client.register_script(_ADMIT)
        self._record = client.register_script(_RECORD)
        self._admit_sync = client.register_script(_ADMIT_SYNC)

    def _keys(self, provider: str) -> tuple[str, str, str]:
        base = f"{self.prefix}{provider}:"
        return base + "breaker", base + "tat", base + "pause"

    def _operator_key(self, provider: str) -> str:
        return f"{self.prefix}{provider}:operator-pause"

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _now_ms_exact(self) -> str:
        """Now in milliseconds to the microsecond, as Lua reads it (the rate limiter's clock)."""
        return f"{self.clock() * 1000:.3f}"

    def rate(self, provider: str) -> RateLimit:
        return self.rates.get(provider, RateLimit())

    def admit(self, provider: str, wanted: int) -> Admission:
        """Grant up to `wanted` calls to `provider` now (consumes rate tokens and probes)."""
        breaker_key, tat_key, pause_key = self._keys(provider)
        rate = self.rate(provider)
        interval = 1000.0 / rate.per_second if rate.per_second > 0 else 0.0
        granted, wait_ms, state, changed, limited = self._admit(
            keys=[breaker_key, tat_key, pause_key, self._operator_key(provider)],
            args=[
                self._now_ms_exact(),
                max(wanted, 0),
                f"{interval:.6f}",
                f"{interval * max(rate.burst, 1):.6f}",
                self.breaker.probes,
                int(self.breaker.probe_timeout_seconds * 1000),
            ],
        )
        return Admission(
            granted=int(granted),
            wait_seconds=int(wait_ms) / 1000.0,
            state=CircuitState(_text(state)),
            limited_by=_text(limited),
            changed_to=CircuitState(_text(changed)) if _text(changed) else None,
        )

    def admit_sync(self, provider: str, wanted: int, per_minute: int) -> int:
        """How many of `wanted` syncs to `provider` may go now (fleet-wide; takes the tokens).

        At most `per_minute` per provider in any 60 s (0: none), and each one also
        spends a token of the provider's rate limit. Asked after `admit` granted the
        polls they come with, so the circuit and pauses have had their say.
        """
        if wanted <= 0 or per_minute <= 0:
            return 0
        _breaker_key, tat_key, _pause_key = self._keys(provider)
        rate = self.rate(provider)
        interval = 1000.0 / rate.per_second if rate.per_second > 0 else 0.0
        granted = self._admit_sync(
            keys=[f"{self.prefix}{provider}:sync-tat", tat_key],
            args=[
                self._now_ms_exact(),
                wanted,
                f"{60_000.0 / per_minute:.6f}",
                f"{interval:.6f}",
                f"{interval * max(rate.burst, 1):.6f}",
            ],
        )
        return int(granted)

    def record(
        self, provider: str, *, successes: int, faults: int, pause_seconds: float | None = None
    ) -> CircuitState | None:
        """Count a batch's answers (faults: provider-wide errors); returns a state change."""
        breaker_key, _tat_key, pause_key = self._keys(provider)
        settings = self.breaker
        changed = self._record(
            keys=[breaker_key, pause_key],
            args=[
                self._now_ms(),
                successes,
                faults,
                int(settings.window_seconds * 1000),
                settings.min_faults,
                int(settings.fault_ratio * 1000),
                int(settings.cooldown_seconds * 1000),
                int(settings.max_cooldown_seconds * 1000),
                int((pause_seconds or 0) * 1000),
            ],
        )
        word = _text(changed)
        return CircuitState(word) if word else None

    def status(self, provider: str) -> ProviderStatus:
        breaker_key, _tat_key, pause_key = self._keys(provider)
        raw: dict[object, object] = self.redis.hgetall(breaker_key)  # type: ignore[assignment]
        fields = {_text(k): _text(v) for k, v in raw.items()}
        paused_until = int(_text(self.redis.get(pause_key)) or 0)
        by_operator = bool(self.redis.exists(self._operator_key(provider)))
        now = self._now_ms()
        state = CircuitState(fields.get("state") or CircuitState.CLOSED)
        open_until = int(fields.get("open_until") or 0)
        return ProviderStatus(
            provider=provider,
            state=state,
            open_for_seconds=max(open_until - now, 0) / 1000 if state is CircuitState.OPEN else 0,
            window_faults=int(fields.get("bad") or 0),
            window_successes=int(fields.get("ok") or 0),
            paused_for_seconds=max(paused_until - now, 0) / 1000,
            rate=self.rate(provider),
            paused_by_operator=by_operator,
        )

    def claim_budget(self, provider: str, interval_seconds: float, ceiling: int) -> int:
        """How many of `provider`'s due rows a sweep should hand out now (no tokens taken).

        0 while its circuit is open or it is paused; a few probes when a probe is
        due; else what its rate allows until the next sweep plus its burst.
        """
        status = self.status(provider)
        if status.paused_by_operator or status.paused_for_seconds > 0:
            return 0
        if status.state is CircuitState.OPEN:
            return 0 if status.open_for_seconds > 0 else self.breaker.probes
        if status.state is CircuitState.HALF_OPEN:
            return self.breaker.probes
        rate = status.rate
        if rate.per_second <= 0:
            return ceiling
        return min(ceiling, math.ceil(rate.per_second * interval_seconds) + max(rate.burst, 1))

    def reset(self, provider: str) -> None:
        """Forget a provider's breaker, pause and rate state (an operator's decision)."""
        self.redis.delete(*self._keys(provider), f"{self.prefix}{provider}:sync-tat")

    def pause(self, provider: str) -> None:
        """Stop polling `provider` fleet-wide until `resume` (rows stay due, nothing counts)."""
        self.redis.set(self._operator_key(provider), "1")

    def resume(self, provider: str) -> None:
        self.redis.delete(self._operator_key(provider))


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode()
    return str(value)
