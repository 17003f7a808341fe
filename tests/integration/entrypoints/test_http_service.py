"""The HTTP service in-process (aiohttp's test server) on SQLite and a real Redis.

Each bound of the webhook route, the app API's auth (no token, wrong scope, revoked),
its answers, health, metrics and docs. The poll queue records what it is sent, so a
webhook's effect is visible without a worker (tests/e2e has the real one).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from models import Verification, utcnow
from models.db import Database
from worker.config import Settings
from worker.domain.api_tokens import digest_of
from worker.entrypoints.http.app import build_app
from worker.entrypoints.http.context import REVOKED_TOKENS_KEY, Ingress
from worker.entrypoints.http.settings import ServiceSettings
from worker.entrypoints.migrate import upgrade
from worker.services.hints import last_hints
from worker.services.tracking import track_verification

SECRET = "gu1-webhook-secret-for-tests"
APP_TOKEN = "kyc_app-token-for-tests"
READER_TOKEN = "kyc_reader-token-for-tests"
REVOKED_TOKEN = "kyc_revoked-token-for-tests"


class RecordingQueue:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def enqueue_polls(self, verification_ids):
        self.batches.append(list(verification_ids))


def service_env(**extra):
    tokens = ",".join(
        [
            f"app:track+read:{digest_of(APP_TOKEN)}",
            f"reader:read:{digest_of(READER_TOKEN)}",
            f"old:track+read:{digest_of(REVOKED_TOKEN)}",
        ]
    )
    return {
        "GU1_WEBHOOK_SECRET": SECRET,
        "KYC_API_TOKENS": tokens,
        "KYC_HINT_FLUSH_MS": "5",
        **extra,
    }


@pytest.fixture
def database(sqlite_url):
    upgrade(sqlite_url)
    db = Database(sqlite_url)
    yield db
    db.dispose()


@pytest.fixture
def make_service(sqlite_url, redis_url, database):
    """run(body, **env): `body(client, context, queue)` against a started service."""

    def run(body, **env):
        settings = Settings.from_env({"KYC_DATABASE_URL": sqlite_url, "KYC_REDIS_URL": redis_url})
        service = ServiceSettings.from_env(service_env(**env))
        queue = RecordingQueue()

        async def main():
            context = Ingress.build(settings, service, queue=queue, db=database)
            context.redis.delete(REVOKED_TOKENS_KEY)
            context.redis.sadd(REVOKED_TOKENS_KEY, "old")
            async with TestClient(TestServer(build_app(context))) as client:
                await body(client, context, queue)

        asyncio.run(main())
        return queue

    return run


def gu1_body(validation_id, *, event="kyc.validation_approved", when=None, **extra):
    document = {
        "event": event,
        "timestamp": (when or utcnow()).isoformat(),
        "organizationId": "org-1",
        "payload": {"validationId": validation_id, "entityId": "ent-1", "status": "approved"},
        **extra,
    }
    return json.dumps(document).encode()


def signed(body, secret=SECRET):
    return {
        "X-Webhook-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "Content-Type": "application/json",
    }


async def settle(context, polls=50):
    """Wait until the hint buffer flushed what it holds."""
    for _ in range(polls):
        await asyncio.sleep(0.02)
        if context.buffer.pending == 0:
            await asyncio.sleep(0.05)
            return


def counted(context, name, **labels):
    value = context.metrics.registry.get_sample_value(name, labels)
    return value or 0


def tracked(database, external_id, hours=1):
    verification = track_verification(database, "gu1", external_id)
    with database.session() as session, session.begin():
        row = session.get(Verification, verification.verification_id)
        row.next_poll_at = utcnow() + timedelta(hours=hours)
    return verification.verification_id


# --------------------------------------------------------------------------- webhooks


def test_a_signed_gu1_webhook_nudges_one_poll_and_records_the_hint(make_service, database):
    verification_id = tracked(database, "val-1")

    async def body(client, context, queue):
        for _ in range(3):  # three different deliveries naming it: one poll
            response = await client.post(
                "/webhooks/gu1", data=(b := gu1_body("val-1")), headers=signed(b)
            )
            assert response.status == 202
            await asyncio.sleep(0.002)
        await settle(context)
        assert queue.batches == [[verification_id]]
        assert last_hints(context.redis, [verification_id])
        assert counted(context, "kyc_poller_webhooks_total", provider="gu1", result="accepted") == 3
        scheduled = counted(
            context,
            "kyc_poller_hints_total",
            provider="gu1",
            source="webhook",
            outcome="scheduled",
        )
        assert scheduled == 1

    make_service(body)
    with database.session() as session:
        row = session.get(Verification, verification_id)
        assert str(row.status) == "pending"  # the webhook's status is never written


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ({}, 401, "missing_signature"),
        ({"X-Webhook-Signature": "00" * 32}, 401, "bad_signature"),
        ({"X-Webhook-Signature": "not hex at all"}, 401, "bad_signature"),
    ],
)
def test_bad_or_missing_signatures_are_401_and_nothing_happens(
    make_service, database, headers, status, reason
):
    tracked(database, "val-1")

    async def body(client, context, queue):
        response = await client.post("/webhooks/gu1", data=gu1_body("val-1"), headers=headers)
        assert response.status == status
        assert (await response.json())["error"] == reason
        await settle(context)
        assert queue.batches == []
        assert counted(context, "kyc_poller_webhooks_total", provider="gu1", result=reason) == 1

    make_service(body)


def test_a_body_signed_with_another_secret_is_refused(make_service, database):
    tracked(database, "val-1")

    async def body(client, context, queue):
        data = gu1_body("val-1")
        response = await client.post("/webhooks/gu1", data=data, headers=signed(data, "x" * 20))
        assert response.status == 401
        await settle(context)
        assert queue.batches == []

    make_service(body)


def test_an_oversized_body_is_413_before_it_is_read(make_service):
    async def body(client, context, queue):
        big = b"{" + b" " * (10 * 1024 * 1024) + b"}"
        response = await client.post("/webhooks/gu1", data=io.BytesIO(big), headers=signed(big))
        assert response.status == 413

        # Chunked, no Content-Length: stopped at the limit too.
        response = await client.post(
            "/webhooks/gu1", data=io.BytesIO(b" " * 200_000), headers=signed(b""), chunked=True
        )
        assert response.status == 413
        assert (
            counted(context, "kyc_poller_webhooks_total", provider="gu1", result="too_large") == 2
        )

    make_service(body, KYC_WEBHOOK_MAX_BODY_BYTES="65536")


def test_a_trickling_body_is_cut_off_at_its_deadline(make_service, monkeypatch):
    from worker.entrypoints.http import common

    monkeypatch.setattr(common, "BODY_DEADLINE_SECONDS", 0.2)

    async def body(client, context, queue):
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(b'POST /webhooks/gu1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"a": ')
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(4096), 5)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408")
        assert counted(context, "kyc_poller_webhooks_total", provider="gu1", result="too_slow") == 1

    make_service(body)


def test_deep_json_is_400_even_when_signed(make_service):
    async def body(client, context, queue):
        deep = b"[" * 30_000 + b"]" * 30_000
        response = await client.post("/webhooks/gu1", data=deep, headers=signed(deep))
        assert (response.status, (await response.json())["error"]) == (400, "too_deep")

    make_service(body, KYC_WEBHOOK_MAX_BODY_BYTES="100000")


def test_stale_and_replayed_webhooks_nudge_nothing(make_service, database):
    tracked(database, "val-1")

    async def body(client, context, queue):
        old = gu1_body("val-1", when=utcnow() - timedelta(minutes=10))
        response = await client.post("/webhooks/gu1", data=old, headers=signed(old))
        assert (response.status, (await response.json())["error"]) == (401, "stale")
        fresh = gu1_body("val-1")
        assert (await client.post("/webhooks/gu1", data=fresh, headers=signed(fresh))).status == 202
        again = await client.post("/webhooks/gu1", data=fresh, headers=signed(fresh))
        assert (again.status, (await again.json())["error"]) == (200, "replayed")
        await settle(context)
        assert len(queue.batches) == 1
        assert counted(context, "kyc_poller_webhooks_total", provider="gu1", result="replayed") == 1

    make_service(body, KYC_WEBHOOK_REPLAY_WINDOW_SECONDS="300")


def test_the_fleet_wide_rate_limit_answers_429(make_service):
    async def body(client, context, queue):
        statuses = []
        for index in range(8):
            data = gu1_body(f"val-{index}")
            statuses.append(
                (await client.post("/webhooks/gu1", data=data, headers=signed(data))).status
            )
        assert statuses.count(202) == 3 and statuses.count(429) == 5
        assert (
            counted(context, "kyc_poller_webhooks_total", provider="gu1", result="rate_limited")
            == 5
        )

    make_service(body, KYC_WEBHOOK_RATE_LIMIT="0.001", KYC_WEBHOOK_RATE_BURST="3")


def test_unknown_ids_are_2xx_and_counted_and_tracked_only_by_opt_in(make_service, database):
    async def body(client, context, queue):
        data = gu1_body("val-unknown")
        assert (await client.post("/webhooks/gu1", data=data, headers=signed(data))).status == 202
        await settle(context)
        assert queue.batches == []
        assert (
            counted(
                context,
                "kyc_poller_hints_total",
                provider="gu1",
                source="webhook",
                outcome="unknown",
            )
            == 1
        )

    make_service(body)
    with database.session() as session:
        assert session.scalars(select(Verification)).all() == []

    async def opted_in(client, context, queue):
        data = gu1_body("val-new")
        assert (await client.post("/webhooks/gu1", data=data, headers=signed(data))).status == 202
        await settle(context)
        assert len(queue.batches) == 1
        assert (
            counted(
                context,
                "kyc_poller_hints_total",
                provider="gu1",
                source="webhook",
                outcome="tracked",
            )
            == 1
        )

    make_service(opted_in, KYC_WEBHOOK_TRACK_UNKNOWN="gu1")
    with database.session() as session:
        assert [row.external_id for row in session.scalars(select(Verification))] == ["val-new"]


def test_other_gu1_events_and_unconfigured_providers(make_service):
    async def body(client, context, queue):
        data = gu1_body("val-1", event="entity.updated")
        response = await client.post("/webhooks/gu1", data=data, headers=signed(data))
        assert (response.status, (await response.json())["error"]) == (200, "ignored_event")
        response = await client.post("/webhooks/notus", data=b"{}")
        assert response.status == 404
        response = await client.post("/webhooks/../etc", data=b"{}")
        assert response.status == 404

    make_service(body)


def test_the_generic_scheme_when_configured(make_service, database):
    tracked_id = track_verification(database, "notus", "sess-9").verification_id

    async def body(client, context, queue):
        data = json.dumps({"data": {"session": "sess-9"}}).encode()
        signature = "sha512=" + hmac.new(b"n" * 20, data, hashlib.sha512).hexdigest()
        response = await client.post("/webhooks/notus", data=data, headers={"X-Sig": signature})
        assert response.status == 202
        await settle(context)
        assert queue.batches == [[tracked_id]]

    make_service(
        body,
        NOTUS_WEBHOOK_SECRET="n" * 20,
        NOTUS_WEBHOOK_HEADER="X-Sig",
        NOTUS_WEBHOOK_ALGORITHM="sha512",
        NOTUS_WEBHOOK_PREFIX="sha512=",
        NOTUS_WEBHOOK_ID_POINTER="/data/session",
    )


# --------------------------------------------------------------------------- the app API


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_the_api_refuses_no_token_unknown_token_wrong_scope_and_revoked_token(make_service):
    async def body(client, context, queue):
        payload = {"provider": "gu1", "external_id": "val-1"}
        no_token = await client.post("/api/v1/verifications", json=payload)
        assert no_token.status == 401 and "Bearer" in no_token.headers["WWW-Authenticate"]
        unknown = await client.post(
            "/api/v1/verifications", json=payload, headers=bearer("kyc_nope")
        )
        assert unknown.status == 401
        hashed = await client.post(
            "/api/v1/verifications", json=payload, headers=bearer(digest_of(APP_TOKEN))
        )
        assert hashed.status == 401  # the configured hash is not a token
        wrong_scope = await client.post(
            "/api/v1/verifications", json=payload, headers=bearer(READER_TOKEN)
        )
        assert (wrong_scope.status, (await wrong_scope.json())["error"]) == (403, "forbidden")
        revoked = await client.get("/api/v1/verifications/gu1/val-1", headers=bearer(REVOKED_TOKEN))
        assert (revoked.status, (await revoked.json())["error"]) == (401, "revoked")
        assert (
            counted(context, "kyc_poller_api_requests_total", route="track", result="unauthorized")
            == 3
        )

    make_service(body)


def test_track_read_history_and_poll_now(make_service, database):
    async def body(client, context, queue):
        payload = {"provider": "predicate", "external_id": "550E8400-E29B-41D4-A716-446655440000"}
        first = await client.post("/api/v1/verifications", json=payload, headers=bearer(APP_TOKEN))
        assert first.status == 201
        tracked_doc = await first.json()
        assert tracked_doc["external_id"] == payload["external_id"].lower()
        again = await client.post("/api/v1/verifications", json=payload, headers=bearer(APP_TOKEN))
        assert again.status == 200 and (await again.json())["created"] is False
        conflict = await client.post(
            "/api/v1/verifications",
            json={**payload, "verification_type": "business"},
            headers=bearer(APP_TOKEN),
        )
        assert conflict.status == 422
        for bad in (
            {"provider": "veriff", "external_id": "x"},
            {"provider": "gu1", "external_id": "../x"},
        ):
            refused = await client.post(
                "/api/v1/verifications", json=bad, headers=bearer(APP_TOKEN)
            )
            assert (refused.status, (await refused.json())["error"]) == (422, "rejected")
        odd = await client.post(
            "/api/v1/verifications", json={**payload, "admin": True}, headers=bearer(APP_TOKEN)
        )
        assert odd.status == 400

        path = f"/api/v1/verifications/predicate/{payload['external_id']}"
        status = await client.get(path, headers=bearer(READER_TOKEN))
        document = await status.json()
        assert status.status == 200
        assert document["status"] == "pending" and document["terminal"] is False
        assert set(document) >= {"since", "summary", "last_error_code", "verification_id"}
        assert "result" not in document and "response" not in json.dumps(document)
        history = await client.get(path + "/history", headers=bearer(READER_TOKEN))
        assert (await history.json())["transitions"] == []
        nudged = await client.post(path + "/poll-now", headers=bearer(APP_TOKEN))
        assert (await nudged.json())["outcome"] == "scheduled"
        assert queue.batches == [[tracked_doc["verification_id"]]]
        collapsed = await client.post(path + "/poll-now", headers=bearer(APP_TOKEN))
        assert (await collapsed.json())["outcome"] == "collapsed"
        missing = await client.get("/api/v1/verifications/gu1/nope", headers=bearer(READER_TOKEN))
        assert missing.status == 404

    make_service(body)


# --------------------------------------------------------------------------- health, docs


def test_health_metrics_and_docs(make_service):
    async def body(client, context, queue):
        assert (await client.get("/livez")).status == 200
        health = await client.get("/healthz")
        assert health.status == 200, await health.text()
        metrics = await (await client.get("/metrics")).text()
        assert "kyc_poller_http_request_duration_seconds" in metrics
        spec = await (await client.get("/openapi.json")).json()
        assert spec["openapi"].startswith("3.")
        assert "/api/v1/verifications/{provider}/{external_id}/poll-now" in spec["paths"]
        page = await (await client.get("/docs")).text()
        assert "/api/v1/verifications" in page and "<script" not in page

    make_service(body)
