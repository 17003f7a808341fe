"""The fake providers over real HTTP: in-process (`FakeProviders`) or as `kyc-fake-providers`.

One ThreadingHTTPServer serves all four providers under path prefixes, so
each provider's base URL is http://HOST:PORT/<provider>. Request threads are
daemons, and nothing is logged per request.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any

from devkit.fake_providers.app import PROVIDER_NAMES, FakeApp
from devkit.fake_providers.credentials import FakeCredentials
from devkit.fake_providers.wire import Reply, Request, json_reply

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1 << 20
DEFAULT_PORT = 8080


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


class FakeProviders:
    """All four fake providers on one local HTTP server, scriptable from Python."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: FakeCredentials | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.app = FakeApp(credentials)
        self.credentials = self.app.credentials
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> FakeProviders:
        if self._server is not None:
            return self
        self._server = _Server((self.host, self.requested_port), self.app)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="fake-providers",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeProviders:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake providers are not started")
        return self._server.server_address[1]

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
    ) -> None:
        """Create (or replace) a scripted session; see fake_providers.steps for the steps."""
        self.app.add_session(provider, session_id, script, verification_type)

    def request_count(self, provider: str, session_id: str) -> int:
        """Authorized status requests that reached the session so far."""
        return self.app.store.request_count(provider, session_id)

    def session_info(self, provider: str, session_id: str) -> dict[str, Any] | None:
        return self.app.store.describe(provider, session_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kyc-fake-providers",
        description="Serve fake Notus, Bank131, gu1 and Predicate status endpoints.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_sigterm)
    with FakeProviders(args.host, args.port) as fake:
        print(f"fake providers listening on {args.host}:{fake.port}: {fake.url}", flush=True)
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
