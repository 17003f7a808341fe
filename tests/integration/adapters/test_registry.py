"""The registry: names, classes, and building only what is configured."""

from __future__ import annotations

import pytest

from worker.adapters import (
    PROVIDER_NAMES,
    UnknownProviderError,
    build_adapter,
    build_adapters,
    get_adapter_class,
)
from worker.adapters.bank131 import Bank131Adapter
from worker.adapters.base import ProviderConfigurationError
from worker.adapters.gu1 import Gu1Adapter
from worker.adapters.notus import NotusAdapter
from worker.adapters.predicate import PredicateAdapter
from worker.config import Settings


def test_names_and_classes():
    assert PROVIDER_NAMES == ("notus", "bank131", "gu1", "predicate")
    assert get_adapter_class("notus") is NotusAdapter
    assert get_adapter_class("bank131") is Bank131Adapter
    assert get_adapter_class("gu1") is Gu1Adapter
    assert get_adapter_class("predicate") is PredicateAdapter
    for name in PROVIDER_NAMES:
        assert get_adapter_class(name).name == name


@pytest.mark.parametrize("name", ["nope", "NOTUS", "", "notus ", None, ["notus"]])
def test_unknown_provider_names_the_known_ones(name):
    with pytest.raises(UnknownProviderError) as info:
        get_adapter_class(name)
    assert isinstance(info.value, ValueError)
    assert "notus, bank131, gu1, predicate" in str(info.value)
    with pytest.raises(UnknownProviderError):
        build_adapter(name, Settings.from_env({}))


def test_build_adapters_builds_all_configured_providers(fake_provider_settings, http):
    adapters = build_adapters(fake_provider_settings, http)
    assert list(adapters) == list(PROVIDER_NAMES)
    assert all(adapter.http is http for adapter in adapters.values())


def test_build_adapters_skips_unconfigured_providers(fake_providers):
    env = fake_providers.provider_env()
    env.pop("GU1_API_KEY")
    env.pop("BANK131_BASE_URL")
    adapters = build_adapters(Settings.from_env(env))
    assert set(adapters) == {"notus", "predicate"}
    assert build_adapters(Settings.from_env({})) == {}


def test_build_adapter_raises_for_an_unconfigured_provider():
    with pytest.raises(ProviderConfigurationError):
        build_adapter("gu1", Settings.from_env({}))


def test_default_http_uses_the_configured_timeouts(fake_providers):
    env = {**fake_providers.provider_env(), "KYC_HTTP_READ_TIMEOUT": "4.5"}
    adapter = build_adapter("notus", Settings.from_env(env))
    assert adapter.http.timeout == (3.05, 4.5)
