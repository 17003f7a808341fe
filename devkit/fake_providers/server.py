"""The fake providers over real HTTP: in-process (`FakeProviders`) or as `kyc-fake-providers`.

One server serves all four providers under path prefixes, so each provider's
base URL is http://HOST:PORT/<provider>. Two servers for the same `FakeApp`:
`aio` (the default: aiohttp on one event loop, see aio_server.py; hundreds of
requests in flight, each waiting out its latency, cost no threads) and
`threaded` (stdlib ThreadingHTTPServer, a daemon thread per connection). Both
pass the same tests. Nothing is logged per request.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import resource
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, Protocol, Self

from devkit.fake_providers.app import PROVIDER_NAMES, FakeApp
from devkit.fake_providers.credentials import FakeCredentials
from devkit.fake_providers.latency import Latency
from devkit.fake_providers.wire import Reply, Request, json_reply
from devkit.lifecycle import StartedInWith

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1 << 20
DEFAULT_PORT = 8080
SERVERS = ("threaded", "aio")
DEFAULT_SERVER = "aio"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the adapters' connection pooling is real
    server_version = "fake-providers/0.1"
    # Headers and body go out in separate writes: without this, Nagle's algorithm and
    # the client's delayed ACK add ~40 ms to every answer on a kept-alive connection.
    disable_nagle_algorithm = True
    sys_version = ""
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no line on stderr per request."""

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            self._write(json_reply(400, {"error": "bad Content-Length"}))
            return
        body = self.rfile.read(length) if length else b""
        path = self.path.partition("?")[0]
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            reply = self.server.app.dispatch(Request(self.command, path, headers, body))
        except Exception:
            log.exception("fake providers: unexpected error for %s %s", self.command, path)
            reply = json_reply(500, {"error": "fake provider bug (see its log)"})
        if reply.delay:
            time.sleep(reply.delay)
        self._write(reply)

    def _write(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a read timeout, as scripted): nothing to answer to.
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: FakeApp) -> None:
        super().__init__(address, _Handler)
        self.app = app

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # clients hanging up are normal here
        log.exception("fake providers: error while serving %s", client_address)


class _Backend(Protocol):
    """A running server for a FakeApp."""

    @property
    def port(self) -> int: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class ThreadedServer:
    """`FakeApp` on the stdlib ThreadingHTTPServer, served from a daemon thread."""

    def __init__(self, address: tuple[str, int], app: FakeApp) -> None:
        self._server = _Server(address, app)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="fake-providers",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _make_backend(kind: str, address: tuple[str, int], app: FakeApp) -> _Backend:
    if kind == "aio":
        # Imported here: the threaded server needs nothing beyond the standard library.
        from devkit.fake_providers.aio_server import AioServer

        return AioServer(address, app, MAX_BODY_BYTES)
    return ThreadedServer(address, app)


class FakeProviders(StartedInWith):
    """All four fake providers on one local HTTP server, scriptable from Python.

    `latency` (seconds, give or take `jitter`) delays every provider answer; change it
    while running with `set_latency` (or PUT /_fake/latency). `server`: "threaded" or "aio".
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: FakeCredentials | None = None,
        *,
        latency: float = 0.0,
        jitter: float = 0.0,
        server: str = DEFAULT_SERVER,
    ) -> None:
        if server not in SERVERS:
            raise ValueError(f"unknown server {server!r}; known: {', '.join(SERVERS)}")
        self.host = host
        self.requested_port = port
        self.server = server
        self.app = FakeApp(credentials, Latency(latency, jitter))
        self.credentials = self.app.credentials
        self._server: _Backend | None = None

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        backend = _make_backend(self.server, (self.host, self.requested_port), self.app)
        backend.start()
        self._server = backend
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    # -- addresses ---------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake providers are not started")
        return self._server.port

    @property
    def url(self) -> str:
        """http://HOST:PORT (a wildcard host is reached through 127.0.0.1)."""
        host = "127.0.0.1" if self.host in {"", "0.0.0.0"} else self.host
        return f"http://{host}:{self.port}"

    def base_url(self, provider: str) -> str:
        return f"{self.url}/{self.app.provider(provider).name}"

    def provider_env(self) -> dict[str, str]:
        """The environment variables worker.config.Settings reads, pointing at these fakes."""
        creds = self.credentials
        return {
            "NOTUS_BASE_URL": self.base_url("notus"),
            "NOTUS_API_KEY": creds.notus_api_key,
            "BANK131_BASE_URL": self.base_url("bank131"),
            "BANK131_PROJECT": creds.bank131_project,
            **creds.bank131_signing_env(),
            "GU1_BASE_URL": self.base_url("gu1"),
            "GU1_API_KEY": creds.gu1_api_key,
            "PREDICATE_BASE_URL": self.base_url("predicate"),
            "PREDICATE_API_KEY": creds.predicate_api_key,
        }

    # -- scripting ---------------------------------------------------------------

    def add_session(
        self,
        provider: str,
        session_id: str,
        script: list[Any],
        verification_type: str | None = None,
        *,
        loop: bool = False,
    ) -> None:
        """Create (or replace) a scripted session; see fake_providers.steps for the steps.

        `loop`: start the script over after its last step (default: repeat the last step).
        """
        self.app.add_session(provider, session_id, script, verification_type, loop=loop)

    def request_count(self, provider: str, session_id: str) -> int:
        """Authorized status requests that reached the session so far."""
        return self.app.store.request_count(provider, session_id)

    def sync_count(self, provider: str, session_id: str) -> int:
        """Sync requests (gu1) that reached the session so far."""
        return self.app.store.sync_count(provider, session_id)

    def session_info(self, provider: str, session_id: str) -> dict[str, Any] | None:
        return self.app.store.describe(provider, session_id)

    # -- latency -----------------------------------------------------------------

    @property
    def latency(self) -> Latency:
        return self.app.latency

    def set_latency(self, latency: float, jitter: float = 0.0) -> None:
        """Every provider answer from now on waits `latency` seconds, give or take `jitter`."""
        self.app.latency = Latency(latency, jitter)


def _raise_open_files_limit(wanted: int = 65_536) -> None:
    """A server of its own may hold thousands of client connections: lift the soft limit on
    open files towards the hard one (as far as allowed; nothing happens otherwise)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kyc-fake-providers",
        description="Serve fake Notus, Bank131, gu1 and Predicate status endpoints.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument(
        "--server",
        choices=SERVERS,
        default=DEFAULT_SERVER,
        help=f"threaded (stdlib) or aio (aiohttp, for load); default {DEFAULT_SERVER}",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="every provider answer waits this long (admin API: PUT /_fake/latency)",
    )
    parser.add_argument(
        "--jitter-ms", type=float, default=0.0, help="give or take up to this much, uniformly"
    )
    args = parser.parse_args(argv)
    _raise_open_files_limit()
    try:
        latency = Latency.from_ms(args.latency_ms, args.jitter_ms)
    except ValueError as exc:
        parser.error(str(exc))

    stop = threading.Event()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_sigterm)
    fakes = FakeProviders(
        args.host, args.port, latency=latency.base, jitter=latency.jitter, server=args.server
    )
    with fakes as fake:
        print(f"fake providers listening on {args.host}:{fake.port}: {fake.url}", flush=True)
        print(
            f"  server: {fake.server}; latency {args.latency_ms:g} ms "
            f"(jitter {args.jitter_ms:g} ms)",
            flush=True,
        )
        for name in PROVIDER_NAMES:
            print(f"  {name:<10} {fake.base_url(name)}", flush=True)
        print("worker environment:", flush=True)
        for key, value in fake.provider_env().items():
            print(f"  {key}={value}", flush=True)
        print(
            f"script sessions with POST {fake.url}/_fake/sessions "
            '{"provider", "id", "script", "type"}; Ctrl-C to stop',
            flush=True,
        )
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
