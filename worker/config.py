"""Runtime configuration, read from environment variables only.

Every knob has a default that works for the embedded setup (SQLite, local
Redis); credentials and provider base URLs have no defaults in code. Provider
variables (`<PREFIX>_*`) are declared by each adapter's settings type and read
through the registry; the README's configuration table lists them all.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from math import inf
from urllib.parse import urlsplit

from redis.connection import parse_url

from models.db import DEFAULT_DATABASE_URL
from worker.adapters.contract import ProviderSettings, TransportLimits
from worker.adapters.registry import PROVIDER_NAMES, provider_settings_from_env
from worker.api.signing_keys import reader_verifier, signer_from_env
from worker.domain.backoff import BackoffSettings
from worker.domain.decisions import ERROR_BACKOFF, PollPolicy
from worker.domain.errors import ConfigurationError
from worker.domain.events import stream_for_channel
from worker.domain.queues import CONTROL_QUEUE, POLL_QUEUE, PUBLIC_QUEUE
from worker.domain.redaction import redact_url
from worker.domain.safety_net import SafetyNetError, SafetyNetSettings
from worker.domain.schedule import plan_from_env
from worker.domain.signatures import EventSigner, EventVerifier
from worker.domain.statuses import VerificationStatus
from worker.domain.sync import SyncPolicy
from worker.services.governor import BreakerSettings

__all__ = ["CONTROL_QUEUE", "POLL_QUEUE", "PUBLIC_QUEUE", "Settings"]


def _redis_url(url: str) -> str:
    """A Redis URL redis-py can open, else a ConfigurationError (not a traceback at first use).

    The URL itself is not quoted: it may carry a password."""
    try:
        parse_url(url)
    except ValueError:
        scheme = urlsplit(url).scheme[:10] or "none"
        raise ConfigurationError(
            "KYC_REDIS_URL must be a redis://, rediss:// or unix:// URL with a valid host, port "
            f"and database (scheme {scheme!r})"
        ) from None
    return url


def _get_float(
    env: Mapping[str, str], name: str, default: float, *, positive: bool = False
) -> float:
    """A number >= 0; `positive`: > 0 (periods and leases, where 0 would loop or expire)."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
    if not value >= 0:  # also refuses NaN
        raise ConfigurationError(f"{name} must not be negative, got {raw!r}")
    if positive and value == 0:
        raise ConfigurationError(f"{name} must be greater than 0, got {raw!r}")
    return value


def _get_int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


_SWITCHES = {"1": True, "true": True, "yes": True, "on": True}
_SWITCHES |= {"0": False, "false": False, "no": False, "off": False}


def _get_switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return _SWITCHES[raw.strip().lower()]
    except KeyError:
        raise ConfigurationError(
            f"{name} must be 1 or 0 (true/false, on/off), got {raw!r}"
        ) from None


def _get_port(env: Mapping[str, str], name: str, default: int) -> int:
    value = _get_int(env, name, default)
    if value > 65535:
        raise ConfigurationError(f"{name} must be a TCP port (0 to 65535), got {value}")
    return value


@dataclass(frozen=True, repr=False)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = "redis://127.0.0.1:6379/0"
    broker_url: str = ""
    result_backend: str = ""
    events_channel: str = "kyc.verification.events"
    # How long a published event id is remembered in Redis so a relay that
    # crashed between publishing and marking it published does not publish twice.
    # It only has to outlast the longest gap between the two (a database outage);
    # each key costs ~165 bytes, so a day, not a week: ~1.4 GB at a steady 100 events/s.
    event_dedupe_ttl: int = 24 * 3600
    # The replayable copy of the channel (a Redis Stream); "" means `<events_channel>.stream`.
    events_stream: str = ""
    # Stream retention, whichever removes more; 0 turns a limit off. ~500 bytes per event,
    # 850-920 for a gu1 decision with its summary (measured).
    events_stream_maxlen: int = 1_000_000
    events_stream_max_age_seconds: float = 7 * 24 * 3600
    # CloudEvents `source` (kyc-events --cloudevents, to_cloudevent).
    events_source: str = "kyc-poller"
    # PostgreSQL: how long a relay waits for another one's turn before leaving it the work.
    relay_lock_timeout_seconds: float = 2.0
    # A poll batch publishes its own events right after its commit, without the relay's
    # turn, unless an earlier event of the same verification is still unpublished
    # (worker.domain.outbox). Off: every event goes through the ordered relay (as before).
    relay_direct: bool = True
    # Retention (beat: kyc.apply_retention); 0 turns a cleanup off.
    outbox_retention_seconds: float = 7 * 24 * 3600
    payload_retention_seconds: float = 30 * 24 * 3600
    retention_interval: float = 600.0
    retention_batch_size: int = 1000
    retention_time_budget_seconds: float = 60.0
    policy: PollPolicy = field(default_factory=PollPolicy)
    limits: TransportLimits = field(default_factory=TransportLimits)
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    schedule_interval: float = 2.0
    relay_interval: float = 2.0
    # Verifications one poll task polls concurrently (one write, one relay). Smaller batches
    # publish sooner (event latency grows with the batch: see the README's figures).
    poll_batch_size: int = 25
    # At most this many verifications claimed by one sweep (fleet ceiling: this / interval).
    sweep_max_claims: int = 20_000
    # A claimed verification is due again after this long if its poll never ran
    # (the worker holding it died): the lease that makes crashes harmless.
    claim_lease_seconds: float = 120.0
    relay_batch_size: int = 500
    # status: the status-aware schedule; adaptive: learned from transition history
    # (falls back to status with too little history); backoff: legacy full jitter.
    schedule_mode: str = "status"
    # Adaptive mode: how often the learned schedule is rebuilt, from how far back.
    adaptive_refresh_seconds: float = 600.0
    adaptive_history_seconds: float = 14 * 24 * 3600.0
    log_format: str = "auto"  # auto | json | console
    log_level: str = "INFO"
    # Prometheus `/metrics` of each worker and beat (0: off). Processes sharing a host need
    # a port each; prometheus_client's multiprocess files go under `metrics_dir` (default:
    # a per-user directory in the system temp dir), one fresh subdirectory per process group.
    metrics_port: int = 9808
    # Loopback unless told: a container sets 0.0.0.0 (compose does) so Prometheus can scrape.
    metrics_addr: str = "127.0.0.1"
    metrics_dir: str = ""
    # How long beat reuses its reading of the fleet (database counts, governor state).
    metrics_cache_seconds: float = 15.0
    providers: Mapping[str, ProviderSettings] = field(default_factory=dict)
    # Events: the workers sign with this key (None: unsigned, and readers drop them); readers
    # of this configuration (the CLI) accept the public keys of `event_verifier`.
    event_signer: EventSigner | None = None
    event_verifier: EventVerifier | None = None
    # The adapting safety net: a provider's waits stretch while its hints arrive.
    safety_net: SafetyNetSettings = field(default_factory=SafetyNetSettings)

    def __repr__(self) -> str:
        """Every field, with the passwords in URLs masked (provider keys are never shown)."""
        shown = []
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, str) and "://" in value:
                value = redact_url(value)
            shown.append(f"{item.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def effective_events_stream(self) -> str:
        return self.events_stream or stream_for_channel(self.events_channel)

    @property
    def effective_result_backend(self) -> str:
        return self.result_backend or self.redis_url

    # Kept for readers of the flat names (backoff settings live in the policy).
    @property
    def poll_backoff(self) -> BackoffSettings:
        return self.policy.poll_backoff

    @property
    def error_backoff(self) -> BackoffSettings:
        return self.policy.error_backoff

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        redis_url = _redis_url(env.get("KYC_REDIS_URL") or env.get("REDIS_URL") or cls.redis_url)
        log_format = env.get("KYC_LOG_FORMAT", "auto").lower()
        if log_format not in {"auto", "json", "console"}:
            raise ConfigurationError(
                f"KYC_LOG_FORMAT must be auto, json or console, got {log_format!r}"
            )
        return cls(
            database_url=env.get("KYC_DATABASE_URL") or cls.database_url,
            redis_url=redis_url,
            broker_url=env.get("KYC_BROKER_URL", ""),
            result_backend=env.get("KYC_RESULT_BACKEND", ""),
            events_channel=env.get("KYC_EVENTS_CHANNEL") or cls.events_channel,
            # Redis refuses `SET ... EX 0`: 0 would stop every publish, so 1 s is the least.
            event_dedupe_ttl=_get_int(env, "KYC_EVENT_DEDUPE_TTL", cls.event_dedupe_ttl, minimum=1),
            events_stream=env.get("KYC_EVENTS_STREAM", ""),
            events_stream_maxlen=_get_int(
                env, "KYC_EVENTS_STREAM_MAXLEN", cls.events_stream_maxlen
            ),
            events_stream_max_age_seconds=_get_float(
                env, "KYC_EVENTS_STREAM_MAX_AGE_SECONDS", cls.events_stream_max_age_seconds
            ),
            events_source=env.get("KYC_EVENTS_SOURCE") or cls.events_source,
            relay_lock_timeout_seconds=_get_float(
                env, "KYC_RELAY_LOCK_TIMEOUT_SECONDS", cls.relay_lock_timeout_seconds
            ),
            relay_direct=_get_switch(env, "KYC_RELAY_DIRECT", cls.relay_direct),
            outbox_retention_seconds=_get_float(
                env, "KYC_OUTBOX_RETENTION_SECONDS", cls.outbox_retention_seconds
            ),
            payload_retention_seconds=_get_float(
                env, "KYC_PAYLOAD_RETENTION_SECONDS", cls.payload_retention_seconds
            ),
            retention_interval=_get_float(
                env, "KYC_RETENTION_INTERVAL", cls.retention_interval, positive=True
            ),
            retention_batch_size=_get_int(
                env, "KYC_RETENTION_BATCH_SIZE", cls.retention_batch_size, 1
            ),
            retention_time_budget_seconds=_get_float(
                env, "KYC_RETENTION_TIME_BUDGET_SECONDS", cls.retention_time_budget_seconds
            ),
            policy=_policy_from_env(env),
            schedule_mode=(env.get("KYC_POLL_SCHEDULE_MODE") or "status").lower(),
            adaptive_refresh_seconds=_get_float(
                env, "KYC_ADAPTIVE_REFRESH_SECONDS", cls.adaptive_refresh_seconds, positive=True
            ),
            adaptive_history_seconds=_get_float(
                env, "KYC_ADAPTIVE_HISTORY_SECONDS", cls.adaptive_history_seconds
            ),
            limits=_limits_from_env(env),
            breaker=_breaker_from_env(env),
            schedule_interval=_get_float(
                env, "KYC_SCHEDULE_INTERVAL", cls.schedule_interval, positive=True
            ),
            relay_interval=_get_float(env, "KYC_RELAY_INTERVAL", cls.relay_interval, positive=True),
            poll_batch_size=_get_int(env, "KYC_POLL_BATCH_SIZE", cls.poll_batch_size, 1),
            sweep_max_claims=_get_int(env, "KYC_SWEEP_MAX_CLAIMS", cls.sweep_max_claims, 1),
            claim_lease_seconds=_get_float(
                env, "KYC_CLAIM_LEASE_SECONDS", cls.claim_lease_seconds, positive=True
            ),
            relay_batch_size=_get_int(env, "KYC_RELAY_BATCH_SIZE", cls.relay_batch_size, 1),
            log_format=log_format,
            log_level=(env.get("KYC_LOG_LEVEL") or "INFO").upper(),
            metrics_port=_get_port(env, "KYC_METRICS_PORT", cls.metrics_port),
            metrics_addr=env.get("KYC_METRICS_ADDR") or cls.metrics_addr,
            metrics_dir=env.get("KYC_METRICS_DIR", ""),
            metrics_cache_seconds=_get_float(
                env, "KYC_METRICS_CACHE_SECONDS", cls.metrics_cache_seconds
            ),
            providers=provider_settings_from_env(env),
            event_signer=signer_from_env(env),
            event_verifier=reader_verifier(env),
            safety_net=_safety_net_from_env(env),
        )


SCHEDULE_MODES = ("status", "adaptive", "backoff")


def _policy_from_env(env: Mapping[str, str]) -> PollPolicy:
    default = PollPolicy()
    mode = (env.get("KYC_POLL_SCHEDULE_MODE") or "status").lower()
    if mode not in SCHEDULE_MODES:
        raise ConfigurationError(
            f"KYC_POLL_SCHEDULE_MODE must be one of {', '.join(SCHEDULE_MODES)}, got {mode!r}"
        )
    try:
        schedules = {k: v for k, v in env.items() if k != "KYC_POLL_SCHEDULE_MODE"}
        plan = plan_from_env(schedules, PROVIDER_NAMES)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    return PollPolicy(
        schedule=None if mode == "backoff" else plan,
        poll_backoff=BackoffSettings(
            base=_get_float(env, "KYC_POLL_BASE_SECONDS", default.poll_backoff.base),
            cap=_get_float(env, "KYC_POLL_MAX_SECONDS", default.poll_backoff.cap),
            floor=_get_float(env, "KYC_POLL_MIN_SECONDS", default.poll_backoff.floor),
        ),
        error_backoff=BackoffSettings(
            base=_get_float(env, "KYC_ERROR_BASE_SECONDS", ERROR_BACKOFF.base),
            cap=_get_float(env, "KYC_ERROR_MAX_SECONDS", ERROR_BACKOFF.cap),
            floor=_get_float(env, "KYC_ERROR_MIN_SECONDS", ERROR_BACKOFF.floor),
        ),
        max_age_seconds=_get_float(env, "KYC_MAX_AGE_SECONDS", default.max_age_seconds),
        max_permanent_errors=_get_int(
            env, "KYC_MAX_PERMANENT_ERRORS", default.max_permanent_errors
        ),
        max_stored_payload_bytes=_get_int(
            env, "KYC_MAX_STORED_PAYLOAD_BYTES", default.max_stored_payload_bytes, 1024
        ),
        unknown_status_poll_seconds=_get_float(
            env,
            "KYC_UNKNOWN_STATUS_POLL_SECONDS",
            default.unknown_status_poll_seconds,
            positive=True,
        ),
        reverification_check_seconds=_get_float(
            env, "KYC_REVERIFICATION_CHECK_SECONDS", default.reverification_check_seconds
        ),
        sync=_sync_from_env(env),
    )


def _safety_net_from_env(env: Mapping[str, str]) -> SafetyNetSettings:
    default = SafetyNetSettings()
    try:
        return SafetyNetSettings(
            factor=_get_float(env, "KYC_HINT_STRETCH_FACTOR", default.factor),
            share=_get_float(env, "KYC_HINT_SHARE", default.share),
            window=_get_int(env, "KYC_HINT_WINDOW", default.window, 1),
            min_transitions=_get_int(env, "KYC_HINT_MIN_TRANSITIONS", default.min_transitions, 1),
            silence_seconds=_get_float(
                env, "KYC_HINT_SILENCE_SECONDS", default.silence_seconds, positive=True
            ),
        )
    except SafetyNetError as exc:
        raise ConfigurationError(f"KYC_HINT_*: {exc}") from None


SYNC_AFTER_VARIABLE = "KYC_SYNC_AFTER_SECONDS"
SYNC_OFF_WORDS = frozenset({"off", "none"})


def _sync_from_env(env: Mapping[str, str]) -> SyncPolicy:
    default = SyncPolicy()
    return SyncPolicy(
        after_seconds=_sync_after(env.get(SYNC_AFTER_VARIABLE), default.after_seconds),
        window_seconds=_get_float(
            env, "KYC_SYNC_WINDOW_SECONDS", default.window_seconds, positive=True
        ),
        max_per_minute=_get_int(env, "KYC_SYNC_MAX_PER_MINUTE", default.max_per_minute),
    )


def _sync_after(
    raw: str | None, default: Mapping[VerificationStatus, float]
) -> dict[VerificationStatus, float]:
    """`"in_progress=3600,in_review=86400"` (a status left out is never synced; "off": none)."""
    if raw is None or not raw.strip():
        return dict(default)
    if raw.strip().lower() in SYNC_OFF_WORDS:
        return {}
    after: dict[VerificationStatus, float] = {}
    for index, pair in enumerate(raw.split(","), start=1):
        word, equals, seconds = (part.strip() for part in pair.partition("="))
        try:
            status = VerificationStatus(word.lower())
            value = float(seconds)
        except ValueError:
            status, value = None, 0.0
        if not equals or status is None or status.is_terminal or not value > 0 or value == inf:
            raise ConfigurationError(
                f"{SYNC_AFTER_VARIABLE}: pair {index} must be <non-terminal status>=<seconds > 0>, "
                f"got {pair.strip()[:40]!r}"
            )
        if status in after:
            raise ConfigurationError(f"{SYNC_AFTER_VARIABLE}: {status} is given twice")
        after[status] = value
    return after


def _limits_from_env(env: Mapping[str, str]) -> TransportLimits:
    default = TransportLimits()
    return TransportLimits(
        connect_timeout=_get_float(env, "KYC_HTTP_CONNECT_TIMEOUT", default.connect_timeout),
        read_timeout=_get_float(env, "KYC_HTTP_READ_TIMEOUT", default.read_timeout),
        deadline=_get_float(env, "KYC_HTTP_DEADLINE", default.deadline),
        max_response_bytes=_get_int(
            env, "KYC_MAX_RESPONSE_BYTES", default.max_response_bytes, 1024
        ),
        max_json_depth=_get_int(env, "KYC_MAX_JSON_DEPTH", default.max_json_depth, 2),
        max_connections=_get_int(env, "KYC_HTTP_MAX_CONNECTIONS", default.max_connections, 1),
        max_connections_per_host=_get_int(
            env, "KYC_HTTP_MAX_CONNECTIONS_PER_HOST", default.max_connections_per_host, 1
        ),
    )


def _breaker_from_env(env: Mapping[str, str]) -> BreakerSettings:
    default = BreakerSettings()
    return BreakerSettings(
        window_seconds=_get_float(env, "KYC_BREAKER_WINDOW_SECONDS", default.window_seconds),
        min_faults=_get_int(env, "KYC_BREAKER_MIN_FAULTS", default.min_faults, 1),
        fault_ratio=_get_float(env, "KYC_BREAKER_FAULT_RATIO", default.fault_ratio),
        cooldown_seconds=_get_float(env, "KYC_BREAKER_COOLDOWN_SECONDS", default.cooldown_seconds),
        max_cooldown_seconds=_get_float(
            env, "KYC_BREAKER_MAX_COOLDOWN_SECONDS", default.max_cooldown_seconds
        ),
        probes=_get_int(env, "KYC_BREAKER_PROBES", default.probes, 1),
    )
