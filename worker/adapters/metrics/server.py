"""The `/metrics` HTTP endpoint each worker and beat serves (a daemon thread)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from worker.adapters.metrics.process import multiprocess_active, multiprocess_dir

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client import CollectorRegistry
    from prometheus_client.registry import Collector

log = structlog.get_logger(__name__)


@dataclass
class MetricsServer:
    """The `/metrics` HTTP endpoint of this process (a daemon thread)."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def exposition_registry(collectors: Sequence[Collector] = ()) -> CollectorRegistry:
    """What `/metrics` shows: every process's files in multiprocess mode (else this
    process's global registry), plus `collectors`."""
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    directory = multiprocess_dir()
    if directory is not None and multiprocess_active():
        MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    else:
        registry.register(REGISTRY)
    for collector in collectors:
        registry.register(collector)
    return registry


def start_metrics_server(
    port: int, addr: str = "0.0.0.0", *, collectors: Sequence[Collector] = ()
) -> MetricsServer | None:
    """Serve `/metrics` on addr:port; None (logged) if the port cannot be bound."""
    from prometheus_client import start_http_server

    registry = exposition_registry(collectors)
    try:
        server, thread = start_http_server(port, addr, registry=registry)
    except OSError as exc:
        log.warning("metrics_server_unavailable", port=port, addr=addr, error=str(exc))
        return None
    log.info(
        "metrics_serving",
        port=int(server.server_port),
        addr=addr,
        multiprocess=multiprocess_dir() is not None,
    )
    return MetricsServer(server, thread)
