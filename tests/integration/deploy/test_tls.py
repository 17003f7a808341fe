"""rediss:// with a self-signed CA (made at test time), ACL users on: the product's Redis clients.

The relay, the governor and a stream reader work over TLS with the CA given in the URL
(`?ssl_ca_certs=`, as KYC_REDIS_URL can carry it); a client that does not trust that CA,
and a plain-text client, are refused.
"""

from __future__ import annotations

import pytest
import redis

from devkit.tls import make_tls_files
from models.db import Database
from tests.support.event_keys import session_signer
from tests.support.outbox_events import add_events
from worker.api.events import replay
from worker.config import Settings
from worker.domain.events import DEFAULT_EVENTS_CHANNEL, DEFAULT_EVENTS_STREAM
from worker.entrypoints.migrate import upgrade
from worker.services.governor import BreakerSettings, ProviderGovernor, RateLimit
from worker.services.relay import OutboxRelay


@pytest.fixture
def tls(tls_redis):
    admin = redis.Redis.from_url(tls_redis.server.url)
    try:
        admin.flushall()
    finally:
        admin.close()
    return tls_redis


@pytest.fixture
def events_db(tmp_path):
    url = f"sqlite:///{tmp_path / 'kyc.db'}"
    upgrade(url)
    db = Database(url)
    yield db
    db.dispose()


def test_the_url_is_rediss_with_the_ca(tls):
    url = tls.url("worker")
    assert url.startswith("rediss://worker:") and "ssl_ca_certs=" in url
    # The configuration accepts it as it is (KYC_REDIS_URL).
    assert Settings.from_env({"KYC_REDIS_URL": url}).redis_url == url


def test_the_relay_publishes_over_tls(tls, events_db):
    add_events(events_db, verifications=2, per_verification=2)
    relay = OutboxRelay(
        events_db,
        tls.client("worker"),
        DEFAULT_EVENTS_CHANNEL,
        dedupe_ttl=60,
        signer=session_signer(),
    )
    assert relay.relay_all().published == 4
    assert tls.client("worker").xlen(DEFAULT_EVENTS_STREAM) == 4


def test_the_governor_works_over_tls(tls):
    governor = ProviderGovernor(
        tls.client("worker"), BreakerSettings(), {"gu1": RateLimit(per_second=5, burst=1)}
    )
    assert governor.admit("gu1", 3).granted == 1
    ProviderGovernor(tls.client("operator"), BreakerSettings(), {}).pause("gu1")
    assert governor.admit("gu1", 1).limited_by == "operator_paused"


def test_a_stream_reader_works_over_tls(tls, events_db):
    add_events(events_db, verifications=3, per_verification=1)
    OutboxRelay(
        events_db,
        tls.client("worker"),
        DEFAULT_EVENTS_CHANNEL,
        dedupe_ttl=60,
        signer=session_signer(),
    ).relay_all()
    items = list(replay(tls.client("subscriber"), DEFAULT_EVENTS_STREAM, from_id="0", follow=False))
    assert len(items) == 3


def test_a_client_that_does_not_trust_the_ca_is_refused(tls, tmp_path):
    other_ca = make_tls_files(tmp_path / "other").ca_cert
    url = tls.url("worker").split("?")[0]
    for client in (
        redis.Redis.from_url(url, socket_timeout=5),  # the system's CAs only
        redis.Redis.from_url(f"{url}?ssl_ca_certs={other_ca}", socket_timeout=5),
    ):
        try:
            with pytest.raises(redis.exceptions.ConnectionError, match=r"(?i)certificate"):
                client.ping()
        finally:
            client.close()


def test_plain_text_is_refused_on_the_tls_port(tls):
    plain = tls.url("worker").split("?")[0].replace("rediss://", "redis://")
    client = redis.Redis.from_url(plain, socket_timeout=3, socket_connect_timeout=3)
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            client.ping()
    finally:
        client.close()
