"""The registry: one tuple of adapter classes, names and settings derived from it."""

from __future__ import annotations

import dataclasses

import pytest

from worker.adapters.bank131 import Bank131Adapter
from worker.adapters.contract import ProviderAdapter
from worker.adapters.gu1 import Gu1Adapter
from worker.adapters.notus import NotusAdapter
from worker.adapters.predicate import PredicateAdapter
from worker.adapters.registry import (
    PROVIDER_NAMES,
    PROVIDERS,
    adapter_class,
    build_adapter,
    build_adapters,
    provider_settings_from_env,
)
from worker.config import Settings
from worker.domain.errors import ProviderConfigurationError, UnknownProviderError


def test_names_and_classes_come_from_one_tuple():
    assert (NotusAdapter, Bank131Adapter, Gu1Adapter, PredicateAdapter) == PROVIDERS
    assert PROVIDER_NAMES == ("notus", "bank131", "gu1", "predicate")
    for cls in PROVIDERS:
        assert adapter_class(cls.name) is cls
        assert issubclass(cls, ProviderAdapter)
        assert cls.env_prefix == cls.name.upper()
        own = f"{cls.env_prefix}_"
        operators = f"KYC_{cls.env_prefix}_STATUS_MAP_EXTRA"
        assert all(v.startswith(own) or v == operators for v in cls.env_variables())
        assert operators in cls.env_variables()


@pytest.mark.parametrize("name", ["nope", "NOTUS", "", "notus ", None, ["notus"]])
def test_unknown_provider_names_the_known_ones(name):
    with pytest.raises(UnknownProviderError) as info:
        adapter_class(name)
    assert isinstance(info.value, ValueError)
    assert "notus, bank131, gu1, predicate" in str(info.value)


def test_build_adapters_builds_all_configured_providers(fake_provider_settings):
    adapters = build_adapters(fake_provider_settings.providers)
    assert list(adapters) == list(PROVIDER_NAMES)


def test_build_adapters_skips_unconfigured_providers(fake_providers):
    env = fake_providers.provider_env()
    env.pop("GU1_API_KEY")
    env.pop("BANK131_BASE_URL")
    adapters = build_adapters(Settings.from_env(env).providers)
    assert set(adapters) == {"notus", "predicate"}
    assert build_adapters(Settings.from_env({}).providers) == {}


def test_build_adapter_raises_for_an_unconfigured_provider_naming_the_variable():
    with pytest.raises(ProviderConfigurationError, match="GU1"):
        build_adapter("gu1", Settings.from_env({"GU1_BASE_URL": "http://x.test"}).providers["gu1"])


def test_each_provider_reads_its_own_prefixed_variables():
    env = {
        "NOTUS_BASE_URL": "http://n.test",
        "NOTUS_API_KEY": "k",
        "NOTUS_RATE_LIMIT": "12.5",
        "NOTUS_RATE_BURST": "30",
        "BANK131_PROJECT": "proj",
        "BANK131_METHOD": "POST",
    }
    settings = provider_settings_from_env(env)
    notus = settings["notus"]
    assert (notus.base_url, notus.rate_limit, notus.rate_burst) == ("http://n.test", 12.5, 30)
    assert dataclasses.asdict(settings["bank131"])["project"] == "proj"
    assert settings["gu1"].base_url == ""


@pytest.mark.parametrize("value", ["fast", "-1"])
def test_bad_numbers_in_provider_settings_are_refused(value):
    with pytest.raises(ValueError, match="NOTUS_RATE_LIMIT"):
        provider_settings_from_env({"NOTUS_RATE_LIMIT": value})


def test_credentials_never_show_in_a_repr():
    settings = provider_settings_from_env(
        {"NOTUS_API_KEY": "secret-key", "BANK131_SIGNING_SECRET": "secret-hmac"}
    )
    assert "secret" not in repr(settings)
