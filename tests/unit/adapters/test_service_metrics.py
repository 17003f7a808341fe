"""The HTTP service's metrics: conventions, one registry per service, all in the README."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from worker.adapters.metrics import ALL_METRICS
from worker.adapters.metrics.service import SERVICE_METRICS, ServiceInstruments

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()


def test_names_follow_the_conventions_and_do_not_collide_with_the_fleet():
    names = [spec.name for spec in SERVICE_METRICS]
    assert len(set(names)) == len(names)
    assert not set(names) & {spec.name for spec in ALL_METRICS}
    for spec in SERVICE_METRICS:
        assert spec.name.startswith("kyc_poller_")
        assert spec.name.endswith("_total") == (spec.kind == "counter")
        if spec.kind == "histogram":
            assert spec.name.endswith("_seconds") and spec.buckets
        assert set(spec.labels) <= {"provider", "result", "outcome", "source", "route"}
        assert f"`{spec.name}` (service)" in README, spec.name


def test_each_service_has_its_own_registry_with_every_metric():
    first, second = ServiceInstruments.create(), ServiceInstruments.create()
    first.webhooks.labels("gu1", "accepted").inc()
    assert (
        second.registry.get_sample_value(
            "kyc_poller_webhooks_total", {"provider": "gu1", "result": "accepted"}
        )
        is None
    )
    body, content_type = first.exposition()
    assert content_type.startswith("text/plain")
    families = {
        family.name
        for family in text_string_to_metric_families(body.decode())
        if not family.name.endswith("_created")  # the client's creation-time companions
    }
    assert families == {spec.family for spec in SERVICE_METRICS}
