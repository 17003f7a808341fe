"""The one contract every provider adapter implements.

An adapter is sans-IO: `build_request` turns (id, type) into an HTTP request and
`interpret` turns the provider's answer into a `PollResult` or raises a
`ProviderError`. Sending is the transport's job (`worker.adapters.transport`),
so the engine can keep hundreds of calls in flight, bound every answer in one
place, and adapters are tested without a network. Provider specifics (paths,
auth, status tables, GUESS notes) stay inside the adapter module.

A provider that can be asked to re-sync a verification with its own upstream
(gu1) says so with `supports_sync` and `build_sync_request`; `request_sync`
sends it and reads the answer as a `SyncAttempt` (never raises). The others
keep the default: no sync.

A fifth provider is one module with a subclass of `ProviderAdapter` and one
line in `worker.adapters.registry.PROVIDERS`.
"""

from __future__ import annotations

import dataclasses
import typing
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from worker.adapters.urls import check_base_url
from worker.domain.errors import (
    ConfigurationError,
    ErrorCode,
    InvalidVerificationTypeError,
    PermanentProviderError,
    ProviderConfigurationError,
    ProviderError,
    RequestRejected,
)
from worker.domain.results import PollResult
from worker.domain.statuses import VerificationStatus
from worker.domain.sync import SyncAttempt
from worker.domain.webhooks import WebhookFormat

__all__ = [
    "PollResult",
    "ProviderAdapter",
    "ProviderRequest",
    "ProviderResponse",
    "ProviderSettings",
    "Transport",
    "TransportLimits",
]


@dataclass(frozen=True)
class ProviderRequest:
    """One HTTP request to a provider (credentials in headers: never log it)."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    body: bytes = b""


@dataclass(frozen=True)
class ProviderResponse:
    """A provider's answer as the transport read it: already bounded in size and time.

    `headers` keys are lower-case. `max_json_depth` is the nesting limit the
    JSON helpers enforce when an adapter reads the body.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes = field(repr=False)
    max_json_depth: int = 64

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class ProviderSettings:
    """What every provider has: where it is and how hard the fleet may call it.

    Subclasses add their credentials. Each field is read from
    `<ENV_PREFIX>_<FIELD>` (e.g. NOTUS_BASE_URL, NOTUS_RATE_LIMIT), except
    `status_map_extra`, read from `KYC_<ENV_PREFIX>_STATUS_MAP_EXTRA`.
    """

    base_url: str = ""
    # Fleet-wide requests per second (0: no limit) and the burst allowed above it.
    rate_limit: float = 20.0
    rate_burst: int = 40
    # Most verifications of this provider being polled at once (0: no ceiling): tracking
    # beyond it is refused, so a flood of junk ids cannot spend the provider's rate budget.
    max_open_verifications: int = 1_000_000
    # Plain http is refused for a base URL that is not on loopback (API keys in clear): a
    # dev stack whose fakes are on another host sets this to true, explicitly.
    allow_insecure_http: bool = False
    # An operator's status words on top of the adapter's table, read from
    # KYC_<ENV_PREFIX>_STATUS_MAP_EXTRA (not <ENV_PREFIX>_...: see `extra_map_variable`).
    status_map_extra: Mapping[str, VerificationStatus] = field(default_factory=dict)


@dataclass(frozen=True)
class TransportLimits:
    """Bounds on every provider call (seconds and bytes): what a `Transport` enforces."""

    connect_timeout: float = 3.05
    read_timeout: float = 10.0
    deadline: float = 15.0
    max_response_bytes: int = 1024 * 1024
    max_json_depth: int = 64
    # Connections per worker process, in total and per provider host.
    max_connections: int = 512
    max_connections_per_host: int = 256


SettingsT = TypeVar("SettingsT", bound=ProviderSettings)


class Transport(Protocol):
    """Sends one request and returns the bounded answer, or raises a ProviderError."""

    async def send(self, provider: str, request: ProviderRequest) -> ProviderResponse: ...


class ProviderAdapter(ABC, Generic[SettingsT]):
    """One provider's status check (see the module docstring)."""

    name: ClassVar[str]
    env_prefix: ClassVar[str]
    settings_type: ClassVar[type[ProviderSettings]] = ProviderSettings
    # The verification types the provider has (empty: none) and the one stored
    # when an app tracks a verification without a type.
    verification_types: ClassVar[tuple[str, ...]] = ()
    default_verification_type: ClassVar[str | None] = None
    # The provider has a sync endpoint (`build_sync_request` is overridden).
    supports_sync: ClassVar[bool] = False
    # Optional capability: the provider's signed webhook (None: it has none we know).
    webhook: ClassVar[WebhookFormat | None] = None

    def __init__(self, settings: SettingsT) -> None:
        self.settings = settings
        self.base_url = check_base_url(
            self.name, settings.base_url, allow_insecure_http=settings.allow_insecure_http
        )

    @classmethod
    @abstractmethod
    def canonical_id(cls, external_id: object) -> str:
        """The id in the one form it is stored and compared in; InvalidExternalIdError if none."""

    @classmethod
    def canonical_type(cls, verification_type: object) -> str | None:
        """The verification type to store (the default when none is given)."""
        if verification_type is None or verification_type == "":
            return cls.default_verification_type
        if not isinstance(verification_type, str):
            raise InvalidVerificationTypeError(
                f"verification type must be a string, got {type(verification_type).__name__}"
            )
        if not cls.verification_types:
            raise InvalidVerificationTypeError(
                f"{cls.name} has no verification types; got type {verification_type!r}"
            )
        word = verification_type.strip().lower()
        if word not in cls.verification_types:
            raise InvalidVerificationTypeError(
                f"{cls.name} verification type must be one of "
                f"{', '.join(cls.verification_types)}; got {verification_type[:40]!r}"
            )
        return word

    @abstractmethod
    def build_request(self, external_id: str, verification_type: str | None) -> ProviderRequest:
        """The status-check request for a canonical id and type."""

    @abstractmethod
    def interpret(self, response: ProviderResponse) -> PollResult:
        """The answer's meaning; raises ProviderError when it is not a usable answer."""

    async def fetch_status(
        self, transport: Transport, external_id: str, verification_type: str | None
    ) -> PollResult:
        """Ask the provider once through `transport`."""
        try:
            request = self.build_request(external_id, verification_type)
        except RequestRejected as exc:
            # A stored id or type this adapter refuses: no request, a permanent error.
            raise PermanentProviderError(ErrorCode.INVALID_EXTERNAL_ID, str(exc)) from None
        return self.interpret(await transport.send(self.name, request))

    def build_sync_request(
        self, external_id: str, verification_type: str | None
    ) -> ProviderRequest | None:
        """The request asking the provider to re-sync a verification; None: it has none."""
        return None

    def interpret_sync(self, response: ProviderResponse) -> SyncAttempt:
        """A 2xx is accepted (with the status word the body may carry); else its ProviderError."""
        from worker.adapters.http import json_object_or_none, raise_for_http_status, short_text

        raise_for_http_status(self.name, response)
        body = json_object_or_none(response)
        word = short_text(body.get("status"), 64) if body is not None else None
        return SyncAttempt.accepted(response.status, word)

    async def request_sync(
        self, transport: Transport, external_id: str, verification_type: str | None
    ) -> SyncAttempt | None:
        """Ask for a sync once; how it went (an error is an outcome, not raised), or None."""
        try:
            request = self.build_sync_request(external_id, verification_type)
        except RequestRejected:
            return SyncAttempt(ErrorCode.INVALID_EXTERNAL_ID.value)
        if request is None:
            return None
        try:
            return self.interpret_sync(await transport.send(self.name, request))
        except ProviderError as error:
            return SyncAttempt(error.code.value, error.http_status)

    def build_stream_request(
        self, external_id: str, verification_type: str | None
    ) -> ProviderRequest | None:
        """Optional capability: a status stream (server-sent events) request, or None."""
        return None

    @classmethod
    def settings_from_env(cls, env: Mapping[str, str]) -> ProviderSettings:
        """This provider's settings from `<env_prefix>_<FIELD>` variables."""
        return settings_from_env(cls.settings_type, cls.env_prefix, env)

    @classmethod
    def env_variables(cls) -> tuple[str, ...]:
        """The variables this provider reads (for documentation and errors)."""
        return tuple(
            extra_map_variable(cls.env_prefix)
            if item.name == EXTRA_MAP_FIELD
            else f"{cls.env_prefix}_{item.name.upper()}"
            for item in dataclasses.fields(cls.settings_type)
        )


def require(provider: str, value: str, variable: str) -> str:
    """A required credential; ProviderConfigurationError naming the variable when empty."""
    if not value:
        raise ProviderConfigurationError(f"{provider} needs {variable} to be set")
    return value


SettingsClass = TypeVar("SettingsClass", bound=ProviderSettings)
_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False}
_BOOLEANS |= {"no": False, "off": False}
EXTRA_MAP_FIELD = "status_map_extra"


def extra_map_variable(prefix: str) -> str:
    """The variable with an operator's extra status words for a provider."""
    return f"KYC_{prefix}_STATUS_MAP_EXTRA"


def settings_from_env(
    settings_type: type[SettingsClass], prefix: str, env: Mapping[str, str]
) -> SettingsClass:
    """Build a provider settings dataclass from `<prefix>_<FIELD>` variables.

    Unset or empty variables keep the field's default; numbers are checked; the
    extra status words are parsed and checked (`parse_status_map_extra`).
    """
    from worker.adapters.status_table import parse_status_map_extra

    hints = typing.get_type_hints(settings_type)
    values: dict[str, Any] = {}
    for item in dataclasses.fields(settings_type):
        if item.name == EXTRA_MAP_FIELD:
            variable = extra_map_variable(prefix)
            values[item.name] = parse_status_map_extra(variable, env.get(variable) or "")
            continue
        variable = f"{prefix}_{item.name.upper()}"
        raw = env.get(variable)
        if raw is None or raw == "":
            continue
        kind = hints[item.name]
        if kind is str:
            values[item.name] = raw.strip()
            continue
        if kind is bool:
            word = raw.strip().lower()
            if word not in _BOOLEANS:
                raise ConfigurationError(f"{variable} must be true or false, got {raw[:20]!r}")
            values[item.name] = _BOOLEANS[word]
            continue
        try:
            number = kind(raw)
        except ValueError:
            raise ConfigurationError(f"{variable} must be a number, got {raw!r}") from None
        if number < 0:
            raise ConfigurationError(f"{variable} must not be negative, got {raw!r}")
        values[item.name] = number
    return settings_type(**values)
