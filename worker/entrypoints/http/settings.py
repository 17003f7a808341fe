"""The HTTP service's settings (`kyc-poller serve`), from the environment, validated at start.

Webhook secrets and API token digests are held in `Secret`s and never appear in a repr,
an error or a log line. A provider's webhook is on only when its secret is set:
gu1 with its documented format (`GU1_WEBHOOK_SECRET`); any other provider with the
generic HMAC scheme, which also needs at least `<PROVIDER>_WEBHOOK_HEADER` and
`<PROVIDER>_WEBHOOK_ID_POINTER`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from worker.adapters.registry import PROVIDER_NAMES, adapter_class
from worker.config import _get_float, _get_int, _get_port
from worker.domain.api_tokens import ApiToken, parse_tokens
from worker.domain.errors import ConfigurationError
from worker.domain.webhooks import HmacScheme, JsonPointer, PointerFormat, WebhookFormat

GENERIC_FIELDS = ("HEADER", "ALGORITHM", "ENCODING", "PREFIX", "ID_POINTER", "TIMESTAMP_POINTER")


class Secret:
    """A secret value that prints as `Secret(***)`."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__


@dataclass(frozen=True)
class ProviderWebhook:
    """One provider's webhook as configured here: its format and secret."""

    provider: str
    format: WebhookFormat
    secret: Secret = field(repr=False)


@dataclass(frozen=True)
class StreamSettings:
    """Predicate's status streams (off unless `max_streams` > 0)."""

    max_streams: int = 0  # per service process
    lease_seconds: float = 30.0
    max_stream_seconds: float = 600.0  # a stream is reopened after this (a bounded life)
    refresh_seconds: float = 5.0
    idle_seconds: float = 90.0  # no byte for this long: the stream is broken
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 300.0
    max_event_bytes: int = 65536


@dataclass(frozen=True)
class ServiceSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 65536
    max_json_depth: int = 32
    webhook_rate: float = 1000.0
    webhook_burst: int = 2000
    replay_window_seconds: float = 300.0
    track_unknown: frozenset[str] = frozenset()
    flush_interval_seconds: float = 0.2
    # Ids per kyc.poll_batch task sent for hints (the sweep's batches are KYC_POLL_BATCH_SIZE):
    # fuller tasks cost the workers less per poll (one transaction and one relay per task).
    hint_batch_size: int = 100
    max_pending_hints: int = 10_000
    collapse_seconds: float = 5.0
    hint_ttl_seconds: int = 7 * 24 * 3600
    webhooks: Mapping[str, ProviderWebhook] = field(default_factory=dict, repr=False)
    tokens: tuple[ApiToken, ...] = field(default=(), repr=False)
    streams: StreamSettings = field(default_factory=StreamSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServiceSettings:
        env = os.environ if env is None else env
        default = cls()
        flush_ms = _get_float(env, "KYC_HINT_FLUSH_MS", default.flush_interval_seconds * 1000)
        return cls(
            host=env.get("KYC_SERVE_HOST") or default.host,
            port=_get_port(env, "KYC_SERVE_PORT", default.port),
            max_body_bytes=_get_int(env, "KYC_WEBHOOK_MAX_BODY_BYTES", default.max_body_bytes, 256),
            max_json_depth=_get_int(env, "KYC_WEBHOOK_MAX_JSON_DEPTH", default.max_json_depth, 2),
            webhook_rate=_get_float(env, "KYC_WEBHOOK_RATE_LIMIT", default.webhook_rate),
            webhook_burst=_get_int(env, "KYC_WEBHOOK_RATE_BURST", default.webhook_burst, 1),
            replay_window_seconds=_get_float(
                env, "KYC_WEBHOOK_REPLAY_WINDOW_SECONDS", default.replay_window_seconds
            ),
            track_unknown=_providers(env, "KYC_WEBHOOK_TRACK_UNKNOWN"),
            flush_interval_seconds=max(flush_ms, 1.0) / 1000,
            hint_batch_size=_get_int(env, "KYC_HINT_BATCH_SIZE", default.hint_batch_size, 1),
            max_pending_hints=_get_int(env, "KYC_HINT_BUFFER_MAX", default.max_pending_hints, 1),
            collapse_seconds=_get_float(
                env, "KYC_HINT_COLLAPSE_SECONDS", default.collapse_seconds, positive=True
            ),
            hint_ttl_seconds=_get_int(env, "KYC_HINT_TTL_SECONDS", default.hint_ttl_seconds, 1),
            webhooks=webhooks_from_env(env),
            tokens=tokens_from_env(env),
            streams=_streams(env),
        )


def _providers(env: Mapping[str, str], name: str) -> frozenset[str]:
    raw = (env.get(name) or "").strip()
    if not raw:
        return frozenset()
    words = {word.strip().lower() for word in raw.split(",") if word.strip()}
    unknown = sorted(words - set(PROVIDER_NAMES))
    if unknown:
        raise ConfigurationError(
            f"{name} lists providers ({', '.join(PROVIDER_NAMES)}); unknown: {', '.join(unknown)}"
        )
    return frozenset(words)


def webhooks_from_env(env: Mapping[str, str]) -> dict[str, ProviderWebhook]:
    """Every provider whose webhook secret is set, with its format (validated)."""
    found: dict[str, ProviderWebhook] = {}
    for provider in PROVIDER_NAMES:
        prefix = adapter_class(provider).env_prefix
        variable = f"{prefix}_WEBHOOK_SECRET"
        secret = (env.get(variable) or "").strip()
        documented = adapter_class(provider).webhook
        generic = {key: env.get(f"{prefix}_WEBHOOK_{key}", "").strip() for key in GENERIC_FIELDS}
        if documented is not None and any(generic.values()):
            raise ConfigurationError(
                f"{provider} has a documented webhook format: {prefix}_WEBHOOK_"
                f"{next(k for k, v in generic.items() if v)} does not apply"
            )
        if not secret:
            if any(generic.values()):
                raise ConfigurationError(f"{provider}'s generic webhook needs {variable}")
            continue
        if len(secret) < 16:
            raise ConfigurationError(f"{variable} must be at least 16 characters")
        fmt = documented if documented is not None else _generic(prefix, generic)
        found[provider] = ProviderWebhook(provider, fmt, Secret(secret.encode()))
    return found


def _generic(prefix: str, fields: Mapping[str, str]) -> WebhookFormat:
    for key in ("HEADER", "ID_POINTER"):
        if not fields[key]:
            raise ConfigurationError(f"the generic webhook needs {prefix}_WEBHOOK_{key}")
    try:
        scheme = HmacScheme(
            fields["HEADER"],
            (fields["ALGORITHM"] or "sha256").lower(),
            (fields["ENCODING"] or "hex").lower(),
            fields["PREFIX"],
        )
        stamp = fields["TIMESTAMP_POINTER"]
        return PointerFormat(
            scheme, JsonPointer(fields["ID_POINTER"]), JsonPointer(stamp) if stamp else None
        )
    except ValueError as exc:
        raise ConfigurationError(f"{prefix}_WEBHOOK_*: {exc}") from None


def tokens_from_env(env: Mapping[str, str]) -> tuple[ApiToken, ...]:
    """`KYC_API_TOKENS` and/or the file at `KYC_API_TOKENS_FILE` (one entry per line)."""
    text = env.get("KYC_API_TOKENS") or ""
    path = env.get("KYC_API_TOKENS_FILE") or ""
    if path:
        try:
            text += "\n" + Path(path).read_text()
        except OSError as exc:
            raise ConfigurationError(
                f"KYC_API_TOKENS_FILE cannot be read ({type(exc).__name__})"
            ) from None
    try:
        return parse_tokens(text)
    except ValueError as exc:
        raise ConfigurationError(f"KYC_API_TOKENS: {exc}") from None


def _streams(env: Mapping[str, str]) -> StreamSettings:
    default = StreamSettings()
    return StreamSettings(
        max_streams=_get_int(env, "KYC_PREDICATE_STREAMS", default.max_streams),
        lease_seconds=_get_float(
            env, "KYC_STREAM_LEASE_SECONDS", default.lease_seconds, positive=True
        ),
        max_stream_seconds=_get_float(
            env, "KYC_STREAM_MAX_SECONDS", default.max_stream_seconds, positive=True
        ),
        refresh_seconds=_get_float(
            env, "KYC_STREAM_REFRESH_SECONDS", default.refresh_seconds, positive=True
        ),
        idle_seconds=_get_float(
            env, "KYC_STREAM_IDLE_SECONDS", default.idle_seconds, positive=True
        ),
        backoff_base_seconds=_get_float(
            env, "KYC_STREAM_BACKOFF_SECONDS", default.backoff_base_seconds, positive=True
        ),
        backoff_max_seconds=_get_float(
            env, "KYC_STREAM_BACKOFF_MAX_SECONDS", default.backoff_max_seconds, positive=True
        ),
        max_event_bytes=default.max_event_bytes,
    )
