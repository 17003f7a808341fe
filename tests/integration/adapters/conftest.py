"""Adapter test fixtures: the real transport (normal and impatient) and adapter factories.

The adapters are sans-IO; these tests drive them through the product's aiohttp
transport against the fake providers over real HTTP. `make_adapter` returns a
small blocking wrapper so each test reads as one status check.

The shared fake-provider fixtures come from tests/support/providers.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from tests.support.providers import fake_provider_settings, new_session_id  # noqa: F401
from worker.adapters.contract import ProviderAdapter
from worker.adapters.event_loop import EventLoopThread
from worker.adapters.registry import build_adapter
from worker.adapters.transport import AiohttpTransport, TransportLimits
from worker.config import Settings
from worker.domain.results import PollResult

# A scripted "timeout" sleeps well past this, so the client gives up first.
SHORT_READ_TIMEOUT = 0.3
TIMEOUT_DELAY = 1.0


@dataclass
class Client:
    """A transport and the loop it runs on."""

    loop: EventLoopThread
    transport: AiohttpTransport


@pytest.fixture(scope="session")
def io_loop() -> Iterator[EventLoopThread]:
    loop = EventLoopThread("test-io")
    yield loop
    loop.stop()


def _client(loop: EventLoopThread, limits: TransportLimits) -> Iterator[Client]:
    client = Client(loop, AiohttpTransport(limits))
    yield client
    loop.run(client.transport.close())


@pytest.fixture(scope="session")
def http(io_loop: EventLoopThread) -> Iterator[Client]:
    yield from _client(io_loop, TransportLimits(connect_timeout=2.0, read_timeout=5.0))


@pytest.fixture
def impatient_http(io_loop: EventLoopThread) -> Iterator[Client]:
    limits = TransportLimits(connect_timeout=2.0, read_timeout=SHORT_READ_TIMEOUT)
    yield from _client(io_loop, limits)


class BlockingAdapter:
    """An adapter with a blocking `fetch_status(id, type)` for tests."""

    def __init__(self, adapter: ProviderAdapter[Any], client: Client) -> None:
        self.adapter = adapter
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.adapter, name)

    def fetch_status(self, external_id: str, verification_type: str | None) -> PollResult:
        coroutine = self.adapter.fetch_status(self.client.transport, external_id, verification_type)
        return self.client.loop.run(coroutine, timeout=30)


AdapterFactory = Callable[..., BlockingAdapter]


@pytest.fixture
def make_adapter(request: pytest.FixtureRequest, http: Client) -> AdapterFactory:
    """make_adapter(provider, client=None, **settings overrides) against the fakes."""
    base: Settings = request.getfixturevalue("fake_provider_settings")

    def make(provider: str, client: Client | None = None, **overrides: Any) -> BlockingAdapter:
        settings = replace(base.providers[provider], **overrides)
        return BlockingAdapter(build_adapter(provider, settings), client or http)

    return make
