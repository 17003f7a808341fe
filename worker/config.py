"""Runtime configuration, read from environment variables only.

Every knob has a default that works for the embedded setup (SQLite, local
Redis); credentials and provider base URLs have no defaults in code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """An environment variable holds a value that cannot be used."""


def _get_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {raw!r}")
    return value


def _get_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {raw!r}")
    return value


@dataclass(frozen=True)
class ProviderSettings:
    """Base URL and credentials of one provider (empty when not configured)."""

    base_url: str = ""
    api_key: str = field(default="", repr=False)
    # Bank131 only: the partner project name and the signing secret.
    project: str = ""
    signing_secret: str = field(default="", repr=False)
    # Bank131 only: GET on its stage host, POST on the live one.
    method: str = "GET"


@dataclass(frozen=True)
class BackoffSettings:
    """Exponential backoff with full jitter, capped (seconds)."""

    base: float = 5.0
    cap: float = 900.0
    floor: float = 1.0


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///var/kyc_poller.db"
    redis_url: str = "redis://127.0.0.1:6379/0"
    broker_url: str = ""
    events_channel: str = "kyc.verification.events"
    # How long a published event id is remembered in Redis so a relay that
    # crashed between publishing and marking it published does not publish twice.
    event_dedupe_ttl: int = 7 * 24 * 3600
    http_connect_timeout: float = 3.05
    http_read_timeout: float = 10.0
    poll_backoff: BackoffSettings = BackoffSettings()
    error_backoff: BackoffSettings = BackoffSettings(base=10.0, cap=1800.0, floor=2.0)
    max_age_seconds: float = 30 * 24 * 3600.0
    max_permanent_errors: int = 5
    schedule_interval: float = 2.0
    relay_interval: float = 2.0
    claim_batch_size: int = 500
    # A claimed verification is due again after this long if its poll never ran
    # (the worker holding it died): the lease that makes crashes harmless.
    claim_lease_seconds: float = 120.0
    relay_batch_size: int = 500
    log_format: str = "auto"  # auto | json | console
    log_level: str = "INFO"
    providers: Mapping[str, ProviderSettings] = field(default_factory=dict)

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        redis_url = env.get("KYC_REDIS_URL") or env.get("REDIS_URL") or cls.redis_url
        providers = {
            "notus": ProviderSettings(
                base_url=env.get("NOTUS_BASE_URL", ""), api_key=env.get("NOTUS_API_KEY", "")
            ),
            "bank131": ProviderSettings(
                base_url=env.get("BANK131_BASE_URL", ""),
                project=env.get("BANK131_PROJECT", ""),
                signing_secret=env.get("BANK131_SIGNING_SECRET", ""),
                method=(env.get("BANK131_METHOD") or "GET").upper(),
            ),
            "gu1": ProviderSettings(
                base_url=env.get("GU1_BASE_URL", ""), api_key=env.get("GU1_API_KEY", "")
            ),
            "predicate": ProviderSettings(
                base_url=env.get("PREDICATE_BASE_URL", ""),
                api_key=env.get("PREDICATE_API_KEY", ""),
            ),
        }
        if providers["bank131"].method not in {"GET", "POST"}:
            raise ConfigError(f"BANK131_METHOD must be GET or POST, got {env['BANK131_METHOD']!r}")
        log_format = env.get("KYC_LOG_FORMAT", "auto").lower()
        if log_format not in {"auto", "json", "console"}:
            raise ConfigError(f"KYC_LOG_FORMAT must be auto, json or console, got {log_format!r}")
        return cls(
            database_url=env.get("KYC_DATABASE_URL") or cls.database_url,
            redis_url=redis_url,
            broker_url=env.get("KYC_BROKER_URL", ""),
            events_channel=env.get("KYC_EVENTS_CHANNEL") or cls.events_channel,
            event_dedupe_ttl=_get_int(env, "KYC_EVENT_DEDUPE_TTL", cls.event_dedupe_ttl),
            http_connect_timeout=_get_float(
                env, "KYC_HTTP_CONNECT_TIMEOUT", cls.http_connect_timeout
            ),
            http_read_timeout=_get_float(env, "KYC_HTTP_READ_TIMEOUT", cls.http_read_timeout),
            poll_backoff=BackoffSettings(
                base=_get_float(env, "KYC_POLL_BASE_SECONDS", 5.0),
                cap=_get_float(env, "KYC_POLL_MAX_SECONDS", 900.0),
                floor=_get_float(env, "KYC_POLL_MIN_SECONDS", 1.0),
            ),
            error_backoff=BackoffSettings(
                base=_get_float(env, "KYC_ERROR_BASE_SECONDS", 10.0),
                cap=_get_float(env, "KYC_ERROR_MAX_SECONDS", 1800.0),
                floor=_get_float(env, "KYC_ERROR_MIN_SECONDS", 2.0),
            ),
            max_age_seconds=_get_float(env, "KYC_MAX_AGE_SECONDS", cls.max_age_seconds),
            max_permanent_errors=_get_int(
                env, "KYC_MAX_PERMANENT_ERRORS", cls.max_permanent_errors
            ),
            schedule_interval=_get_float(env, "KYC_SCHEDULE_INTERVAL", cls.schedule_interval),
            relay_interval=_get_float(env, "KYC_RELAY_INTERVAL", cls.relay_interval),
            claim_batch_size=_get_int(env, "KYC_CLAIM_BATCH_SIZE", cls.claim_batch_size),
            claim_lease_seconds=_get_float(env, "KYC_CLAIM_LEASE_SECONDS", cls.claim_lease_seconds),
            relay_batch_size=_get_int(env, "KYC_RELAY_BATCH_SIZE", cls.relay_batch_size),
            log_format=log_format,
            log_level=(env.get("KYC_LOG_LEVEL") or "INFO").upper(),
            providers=providers,
        )
