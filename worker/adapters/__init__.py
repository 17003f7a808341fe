"""The provider registry: which adapters exist, and building the configured ones.

Provider specifics stay in their modules; this only maps names to classes.
"""

from __future__ import annotations

from worker.adapters.bank131 import Bank131Adapter
from worker.adapters.base import ProviderAdapter, ProviderConfigurationError
from worker.adapters.gu1 import Gu1Adapter
from worker.adapters.http import ProviderHttp, create_http_session
from worker.adapters.notus import NotusAdapter
from worker.adapters.predicate import PredicateAdapter
from worker.config import ProviderSettings, Settings

PROVIDER_NAMES = ("notus", "bank131", "gu1", "predicate")

_ADAPTER_CLASSES: dict[str, type] = {
    NotusAdapter.name: NotusAdapter,
    Bank131Adapter.name: Bank131Adapter,
    Gu1Adapter.name: Gu1Adapter,
    PredicateAdapter.name: PredicateAdapter,
}


class UnknownProviderError(ValueError):
    """A provider name kyc-poller has no adapter for."""

    def __init__(self, name: object) -> None:
        super().__init__(f"unknown provider {name!r}; known providers: {', '.join(PROVIDER_NAMES)}")
        self.name = name


def get_adapter_class(name: str) -> type[ProviderAdapter]:
    """The adapter class for `name`, for validating ids without credentials.

    `validate_external_id` and `default_verification_type` work on the class.
    """
    try:
        return _ADAPTER_CLASSES[name]
    except (KeyError, TypeError):
        raise UnknownProviderError(name) from None


def default_http(settings: Settings) -> ProviderHttp:
    """A pooled session with the configured timeouts."""
    return ProviderHttp(
        create_http_session(),
        connect_timeout=settings.http_connect_timeout,
        read_timeout=settings.http_read_timeout,
    )


def build_adapter(
    name: str, settings: Settings, http: ProviderHttp | None = None
) -> ProviderAdapter:
    """One provider's adapter; raises ProviderConfigurationError when it is not configured."""
    adapter_class = get_adapter_class(name)
    provider_settings = settings.providers.get(name, ProviderSettings())
    return adapter_class(provider_settings, http or default_http(settings))  # type: ignore[call-arg]


def build_adapters(
    settings: Settings, http: ProviderHttp | None = None
) -> dict[str, ProviderAdapter]:
    """Adapters for every configured provider (one shared HTTP session); others are skipped."""
    http = http or default_http(settings)
    adapters: dict[str, ProviderAdapter] = {}
    for name in PROVIDER_NAMES:
        try:
            adapters[name] = build_adapter(name, settings, http)
        except ProviderConfigurationError:
            continue
    return adapters


__all__ = [
    "PROVIDER_NAMES",
    "UnknownProviderError",
    "build_adapter",
    "build_adapters",
    "default_http",
    "get_adapter_class",
]
