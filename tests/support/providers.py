"""The fake providers for the tests, over real HTTP on a free local port.

Fixtures (import them into tests/conftest.py):

- `fake_providers` (session): a started `fake_providers.server.FakeProviders`
  with the default credentials. Sessions are never removed, so tests use
  unique ids (below) and never see each other's sessions.
- `new_session_id` (function): `new_session_id(provider) -> str`, a fresh id
  the provider's adapter accepts (a UUID for Predicate, digits for Bank131).
- `fake_provider_settings` (session): `worker.config.Settings` whose providers
  all point at `fake_providers`.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator

import pytest

from devkit.fake_providers.server import FakeProviders
from worker.config import Settings

_counter = itertools.count(1)


def unique_session_id(provider: str) -> str:
    """An id no other test uses, in the form the provider's ids take."""
    if provider == "predicate":
        return str(uuid.uuid4())
    if provider == "bank131":
        return f"{uuid.uuid4().int % 10**12}{next(_counter)}"
    return f"{provider}-{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
def fake_providers() -> Iterator[FakeProviders]:
    with FakeProviders() as fake:
        yield fake


@pytest.fixture
def new_session_id() -> Callable[[str], str]:
    return unique_session_id


@pytest.fixture(scope="session")
def fake_provider_settings(fake_providers: FakeProviders) -> Settings:
    return Settings.from_env(fake_providers.provider_env())
