"""`kyc-poller serve`: the HTTP service process (webhooks, the app API, health, metrics, docs).

One asyncio process (aiohttp.web); run as many as the load needs behind a load balancer:
nothing another replica needs is kept in the process. SIGTERM stops it gracefully: the
server stops accepting, the hints that wait are flushed, connections close. No access
log: paths carry verification ids and the service logs only what it decides.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from aiohttp import web

from worker.adapters.logs import configure_logging
from worker.config import Settings
from worker.domain.errors import ConfigurationError
from worker.entrypoints.http.app import build_app
from worker.entrypoints.http.context import Ingress
from worker.entrypoints.http.settings import ServiceSettings


def run(host: str | None = None, port: int | None = None) -> int:
    """Serve until SIGINT/SIGTERM; 2 on a configuration error (one line on stderr)."""
    try:
        settings = Settings.from_env()
        service = ServiceSettings.from_env()
    except ConfigurationError as exc:
        print(f"kyc-poller serve: configuration: {exc}", file=sys.stderr, flush=True)
        return 2
    configure_logging(settings.log_format, settings.log_level)
    app = build_app(Ingress.build(settings, service))
    web.run_app(
        app,
        host=host or service.host,
        port=service.port if port is None else port,
        access_log=None,
        print=None,
        shutdown_timeout=10,
        handle_signals=True,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from worker.entrypoints.cli import main as cli_main

    return cli_main(["serve", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
