"""The service and a real worker end to end: a signed gu1 webhook → a poll → the event.

No beat runs: nothing but the webhook can make the worker poll, so the event proves the
path. The webhook says "approved"; the event says what the provider's API answered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import urllib.request
import uuid

import pytest

from devkit.fake_providers.gu1 import PERSONAL_VALUES
from devkit.local_fleet import free_port, start_service, start_worker, wait_for_http
from models import utcnow
from worker.api.client import KycClient
from worker.api.events import BackgroundSubscriber
from worker.entrypoints.migrate import upgrade

pytestmark = pytest.mark.e2e
SECRET = "e2e-gu1-webhook-secret"


def post_webhook(url: str, document: dict) -> int:
    body = json.dumps(document).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"X-Webhook-Signature": signature}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_a_signed_gu1_webhook_gets_the_event_out(tmp_path, fake_providers, redis_url):
    database_url = f"sqlite:///{tmp_path / 'kyc.db'}"
    upgrade(database_url)
    channel = "e2e.webhook." + uuid.uuid4().hex
    port = free_port()
    env = {
        **os.environ,
        **fake_providers.provider_env(),
        "KYC_DATABASE_URL": database_url,
        "KYC_REDIS_URL": redis_url,
        "KYC_EVENTS_CHANNEL": channel,
        "KYC_LOG_FORMAT": "json",
        "KYC_METRICS_PORT": "0",
        "GU1_WEBHOOK_SECRET": SECRET,
    }
    validation = f"val-{uuid.uuid4().hex[:12]}"
    fake_providers.add_session("gu1", validation, ["approved"])
    with KycClient(database_url) as client:
        client.track("gu1", validation)
    collector = BackgroundSubscriber(redis_url, channel)
    service = start_service(env, tmp_path, port=port)
    worker = start_worker(env, tmp_path, concurrency=1)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/livez", process=service)
        sent = time.monotonic()
        status = post_webhook(
            f"http://127.0.0.1:{port}/webhooks/gu1",
            {
                "event": "kyc.validation_approved",
                "timestamp": utcnow().isoformat(),
                "organizationId": "org-e2e",
                "payload": {"validationId": validation, "entityId": "ent-1", "status": "approved"},
            },
        )
        assert status == 202
        while not collector.received():
            assert time.monotonic() - sent < 60, worker.log_tail() + service.log_tail()
            time.sleep(0.05)
        delay = time.monotonic() - sent
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            metrics = response.read().decode()
    finally:
        collector.stop()
        for process in (service, worker):
            process.stop()
    print(f"\nwebhook: event out {delay:.2f} s after the webhook (worker start included)")
    (event,) = collector.received()
    assert (event["external_id"], event["to_status"]) == (validation, "approved")
    assert fake_providers.request_count("gu1", validation) == 1  # polled once, by the hint
    assert (
        'kyc_poller_hints_total{outcome="scheduled",provider="gu1",source="webhook"} 1.0' in metrics
    )
    logs = service.log_path.read_text() + worker.log_path.read_text()
    assert "ent-1" not in logs and "org-e2e" not in logs  # no body in any log line
    assert not [value for value in PERSONAL_VALUES if value in logs]
