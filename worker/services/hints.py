"""When hints arrive: the record the adapting safety net (issue 16, item 4) reads.

A hint is a provider telling us a verification may have changed (a signed webhook, a
status-stream message) and we accepted it for a poll. `record_hints` notes, per
verification, the time of its last hint, and counts hints per provider, in Redis:

- `kyc-poller:hint:<verification id>` = Unix time of its last hint (seconds, text),
  expiring after `ttl_seconds` (default 7 days: bounded memory, ~90 bytes a key);
- `kyc-poller:hints:<provider>` = hints accepted for that provider since Redis started
  (an INCRBY counter), and `kyc-poller:hints:<provider>:last` = the time of the latest.

One pipelined round trip per call, so the HTTP service calls it once per flushed batch.
Recording is best effort: the caller logs a Redis failure, and the hint's poll goes on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime

import redis

HINT_KEY_PREFIX = "kyc-poller:hint:"
HINT_COUNT_PREFIX = "kyc-poller:hints:"
DEFAULT_HINT_TTL_SECONDS = 7 * 24 * 3600


def record_hints(
    client: redis.Redis,
    provider: str,
    verification_ids: Iterable[int],
    now: datetime,
    *,
    ttl_seconds: int = DEFAULT_HINT_TTL_SECONDS,
) -> int:
    """Note that these verifications of `provider` had a hint at `now`; returns how many."""
    ids = list(dict.fromkeys(verification_ids))
    if not ids:
        return 0
    stamp = f"{now.timestamp():.3f}"
    with client.pipeline(transaction=False) as pipe:
        for verification_id in ids:
            pipe.set(f"{HINT_KEY_PREFIX}{verification_id}", stamp, ex=max(ttl_seconds, 1))
        pipe.incrby(f"{HINT_COUNT_PREFIX}{provider}", len(ids))
        pipe.set(f"{HINT_COUNT_PREFIX}{provider}:last", stamp, ex=max(ttl_seconds, 1))
        pipe.execute()
    return len(ids)


def last_hints(client: redis.Redis, verification_ids: Sequence[int]) -> dict[int, float]:
    """The Unix time of each verification's last hint, for those that had one in the TTL."""
    if not verification_ids:
        return {}
    keys = [f"{HINT_KEY_PREFIX}{vid}" for vid in verification_ids]
    values: list[object] = client.mget(keys)  # type: ignore[assignment]
    stamps = {
        vid: stamp_seconds(value) for vid, value in zip(verification_ids, values, strict=True)
    }
    return {vid: stamp for vid, stamp in stamps.items() if stamp is not None}


def stamp_seconds(value: object) -> float | None:
    """A stamp this module wrote, as Unix seconds; None for no value or one that is not a
    finite number (a garbled or forged key reads as "no hint", never an exception)."""
    if value is None:
        return None
    try:
        seconds = float(value.decode() if isinstance(value, bytes) else str(value))
    except (ValueError, UnicodeDecodeError):
        return None
    return seconds if math.isfinite(seconds) else None


def hint_count(client: redis.Redis, provider: str) -> int:
    """Hints accepted for `provider` (since its counter was made)."""
    value = client.get(f"{HINT_COUNT_PREFIX}{provider}")
    return int(value) if value is not None else 0  # type: ignore[arg-type]
