"""The provider registry: one tuple of adapter classes from which everything else derives.

Names, settings, the configured adapters and the tests' provider lists all come
from `PROVIDERS`; a fifth provider is one module and one line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.adapters.bank131 import Bank131Adapter
from worker.adapters.contract import ProviderAdapter, ProviderSettings
from worker.adapters.gu1 import Gu1Adapter
from worker.adapters.notus import NotusAdapter
from worker.adapters.predicate import PredicateAdapter
from worker.domain.errors import ProviderConfigurationError, UnknownProviderError

AdapterClass = type[ProviderAdapter[Any]]

PROVIDERS: tuple[AdapterClass, ...] = (NotusAdapter, Bank131Adapter, Gu1Adapter, PredicateAdapter)
PROVIDER_NAMES: tuple[str, ...] = tuple(provider.name for provider in PROVIDERS)
_BY_NAME: dict[str, AdapterClass] = {provider.name: provider for provider in PROVIDERS}


def adapter_class(name: object) -> AdapterClass:
    """The adapter class for `name` (ids and types are checked on the class, no credentials)."""
    found = _BY_NAME.get(name) if isinstance(name, str) else None
    if found is None:
        raise UnknownProviderError(name, PROVIDER_NAMES)
    return found


def provider_settings_from_env(env: Mapping[str, str]) -> dict[str, ProviderSettings]:
    """Every provider's settings from its `<PREFIX>_*` variables."""
    return {provider.name: provider.settings_from_env(env) for provider in PROVIDERS}


def build_adapter(name: str, settings: ProviderSettings) -> ProviderAdapter[Any]:
    """One provider's adapter; ProviderConfigurationError when it is not configured."""
    cls = adapter_class(name)
    if not isinstance(settings, cls.settings_type):
        raise ProviderConfigurationError(
            f"{name} needs {cls.settings_type.__name__}, got {type(settings).__name__}"
        )
    return cls(settings)


def build_adapters(settings: Mapping[str, ProviderSettings]) -> dict[str, ProviderAdapter[Any]]:
    """Adapters for every configured provider; the others are left out (their rows wait)."""
    adapters: dict[str, ProviderAdapter[Any]] = {}
    for name, provider_settings in settings.items():
        try:
            adapters[name] = build_adapter(name, provider_settings)
        except ProviderConfigurationError:
            continue
    return adapters
