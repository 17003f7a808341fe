"""Adapter test fixtures: HTTP clients with normal and short timeouts, and adapter factories.

The shared fake-provider fixtures come from tests/support/providers.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

# `fake_providers` itself comes from tests/conftest.py.
from tests.support.providers import fake_provider_settings, new_session_id  # noqa: F401
from worker.adapters import build_adapter
from worker.adapters.base import ProviderAdapter
from worker.adapters.http import ProviderHttp, create_http_session
from worker.config import Settings

# A scripted "timeout" sleeps well past this, so the client gives up first.
SHORT_READ_TIMEOUT = 0.3
TIMEOUT_DELAY = 1.0


@pytest.fixture(scope="session")
def http() -> Iterator[ProviderHttp]:
    session = create_http_session()
    yield ProviderHttp(session, connect_timeout=2.0, read_timeout=5.0)
    session.close()


@pytest.fixture
def impatient_http() -> Iterator[ProviderHttp]:
    session = create_http_session()
    yield ProviderHttp(session, connect_timeout=2.0, read_timeout=SHORT_READ_TIMEOUT)
    session.close()


AdapterFactory = Callable[..., ProviderAdapter]


@pytest.fixture
def make_adapter(request: pytest.FixtureRequest, http: ProviderHttp) -> AdapterFactory:
    """make_adapter(provider, http=None, **ProviderSettings overrides) against the fakes."""
    base: Settings = request.getfixturevalue("fake_provider_settings")

    def make(provider: str, http_client: ProviderHttp | None = None, **overrides: Any):
        providers = dict(base.providers)
        providers[provider] = replace(providers[provider], **overrides)
        return build_adapter(provider, replace(base, providers=providers), http_client or http)

    return make
