"""Metrics: the engine's Prometheus observer counts what it should, with bounded labels."""

from __future__ import annotations

import os
import random
from datetime import timedelta

import fakeredis
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.doubles import NO_TRANSPORT, FakeClock, ScriptedAdapter, result, run_coroutine
from worker.adapters import metrics
from worker.adapters.memory_store import MemoryStore
from worker.adapters.metrics import counts as metrics_counts
from worker.adapters.metrics import process as metrics_process
from worker.config import Settings
from worker.domain.backoff import BackoffSettings
from worker.domain.decisions import PollPolicy
from worker.domain.errors import (
    ConfigurationError,
    ErrorCode,
    PermanentProviderError,
    ProviderUnavailableError,
)
from worker.services.governor import BreakerSettings, ProviderGovernor, RateLimit
from worker.services.polling import PollEngine

POLICY = PollPolicy(
    poll_backoff=BackoffSettings(base=5.0, cap=300.0, floor=1.0),
    error_backoff=BackoffSettings(base=10.0, cap=600.0, floor=2.0),
    max_age_seconds=3600.0,
    max_permanent_errors=2,
)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def instruments(registry) -> metrics.Instruments:
    return metrics.Instruments.create(registry)


@pytest.fixture
def observer(instruments) -> metrics.PrometheusObserver:
    return metrics.PrometheusObserver(instruments)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def engine(store, adapter, clock, observer, governor=None) -> PollEngine:
    return PollEngine(
        store,
        {adapter.name: adapter},
        transport=NO_TRANSPORT,
        policy=POLICY,
        runner=run_coroutine,
        governor=governor,
        clock=clock,
        rng=random.Random(5),
        observer=observer,
    )


def value(registry, name, **labels) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def add(store, clock, n, provider="notus") -> list[int]:
    return [store.add(provider, f"sess-{i}", now=clock()) for i in range(n)]


def test_polls_calls_and_transitions_are_counted_by_provider_and_outcome(
    registry, observer, store, clock
):
    ids = add(store, clock, 3)
    adapter = ScriptedAdapter("notus", [result("in_review"), result("in_review")])
    poller = engine(store, adapter, clock, observer)
    poller.poll_batch(ids)
    clock.advance(60)
    poller.poll_batch(ids)

    def polls(outcome, code=""):
        return value(
            registry, "kyc_poller_polls_total", provider="notus", outcome=outcome, error_code=code
        )

    assert polls("transition") == 3
    assert polls("unchanged") == 3
    transitions = value(
        registry,
        "kyc_poller_transitions_total",
        provider="notus",
        to_status="in_review",
        reason="provider",
    )
    assert transitions == 3
    calls = value(registry, "kyc_poller_provider_calls_total", provider="notus", result="answered")
    assert calls == 6
    count = "kyc_poller_provider_call_duration_seconds_count"
    assert value(registry, count, provider="notus") == 6
    assert value(registry, "kyc_poller_provider_call_duration_seconds_sum", provider="notus") >= 0


def test_errors_are_counted_by_code_and_a_final_failure_as_a_transition(
    registry, observer, store, clock
):
    ids = add(store, clock, 2)
    adapter = ScriptedAdapter("notus", [PermanentProviderError(ErrorCode.NOT_FOUND, "404")])
    poller = engine(store, adapter, clock, observer)
    poller.poll_batch(ids)
    clock.advance(60)
    poller.poll_batch(ids)  # the second permanent error ends them `failed`

    polls = "kyc_poller_polls_total"
    assert value(registry, polls, provider="notus", outcome="error", error_code="not_found") == 2
    failed = value(registry, polls, provider="notus", outcome="transition", error_code="not_found")
    assert failed == 2
    by_status = value(
        registry,
        "kyc_poller_transitions_total",
        provider="notus",
        to_status="failed",
        reason="provider_error",
    )
    assert by_status == 2
    calls = value(registry, "kyc_poller_provider_calls_total", provider="notus", result="not_found")
    assert calls == 4


def governor_for(clock, **rate) -> ProviderGovernor:
    breaker = BreakerSettings(min_faults=3, fault_ratio=0.5, cooldown_seconds=10, probes=1)
    rates = {"notus": RateLimit(**rate)} if rate else {}
    return ProviderGovernor(
        fakeredis.FakeRedis(), breaker, rates, clock=lambda: clock().timestamp()
    )


def test_rate_limit_waits_are_counted_as_deferred_polls(registry, observer, store, clock):
    ids = add(store, clock, 30)
    gov = governor_for(clock, per_second=5, burst=10)
    engine(store, ScriptedAdapter("notus", [result("pending")]), clock, observer, gov).poll_batch(
        ids
    )
    deferred = value(
        registry, "kyc_poller_polls_deferred_total", provider="notus", reason="rate_limited"
    )
    assert deferred == 20
    polls = value(
        registry,
        "kyc_poller_polls_total",
        provider="notus",
        outcome="deferred",
        error_code="rate_limited",
    )
    assert polls == 20
    assert value(registry, "kyc_poller_provider_calls_total", provider="notus", result="answered")


def test_circuit_changes_are_counted(registry, observer, store, clock):
    ids = add(store, clock, 5)
    gov = governor_for(clock)
    adapter = ScriptedAdapter("notus", [ProviderUnavailableError(ErrorCode.TIMEOUT, "timed out")])
    poller = engine(store, adapter, clock, observer, gov)
    poller.poll_batch(ids)
    opened = value(registry, "kyc_poller_circuit_changes_total", provider="notus", state="open")
    assert opened == 1
    clock.advance(1)
    poller.poll_batch(ids)
    assert value(
        registry, "kyc_poller_polls_deferred_total", provider="notus", reason="circuit_open"
    )
    adapter.steps = [result("pending")]
    clock.advance(11)
    poller.poll_batch(ids)  # the cooldown is over: the probe succeeds
    for state in ("half_open", "closed"):
        changes = value(registry, "kyc_poller_circuit_changes_total", provider="notus", state=state)
        assert changes == 1, state
    timeouts = value(
        registry, "kyc_poller_polls_total", provider="notus", outcome="error", error_code="timeout"
    )
    assert timeouts == 5


def delay_samples(registry, name):
    return value(registry, f"{name}_count", provider="predicate"), value(
        registry, f"{name}_sum", provider="predicate"
    )


def test_detection_delay_from_the_providers_own_time(registry, observer, store, clock):
    (vid,) = add(store, clock, 1, provider="predicate")
    clock.advance(100)
    completed = (clock() - timedelta(seconds=42)).isoformat().replace("+00:00", "Z")
    answer = result("approved", summary={"completed_at": completed})
    engine(store, ScriptedAdapter("predicate", [answer]), clock, observer).poll_batch([vid])
    assert delay_samples(registry, "kyc_poller_detection_delay_seconds") == (1, 42)


def test_a_provider_time_before_the_status_began_is_not_a_detection_delay(
    registry, observer, store, clock
):
    (vid,) = add(store, clock, 1, provider="predicate")
    before = (clock() - timedelta(hours=1)).isoformat()
    answer = result("approved", summary={"completed_at": before})
    engine(store, ScriptedAdapter("predicate", [answer]), clock, observer).poll_batch([vid])
    assert delay_samples(registry, "kyc_poller_detection_delay_seconds") == (0, 0)


@pytest.mark.parametrize("garbage", ["yesterday", "", "2026-13-45T99:00:00"])
def test_an_unreadable_provider_time_is_ignored(registry, observer, store, clock, garbage):
    (vid,) = add(store, clock, 1, provider="predicate")
    answer = result("approved", summary={"completed_at": garbage})
    engine(store, ScriptedAdapter("predicate", [answer]), clock, observer).poll_batch([vid])
    assert delay_samples(registry, "kyc_poller_detection_delay_seconds") == (0, 0)


def test_detection_delay_upper_bound_from_the_previous_poll(registry, observer, store, clock):
    (vid,) = add(store, clock, 1, provider="predicate")
    adapter = ScriptedAdapter("predicate", [result("pending"), result("approved")])
    poller = engine(store, adapter, clock, observer)
    poller.poll_batch([vid])  # unchanged: remembered
    clock.advance(30)
    poller.poll_batch([vid])  # the change, 30 s after the previous poll
    name = "kyc_poller_detection_delay_upper_bound_seconds"
    assert delay_samples(registry, name) == (1, 30)
    assert observer._last_poll == {}  # terminal: forgotten


def test_the_poll_memory_is_bounded(instruments, store, clock):
    observer = metrics.PrometheusObserver(instruments, memory=2)
    ids = add(store, clock, 5)
    engine(store, ScriptedAdapter("notus", [result("pending")]), clock, observer).poll_batch(ids)
    assert list(observer._last_poll) == ids[-2:]


def test_labels_stay_bounded(registry, observer, instruments, monkeypatch):
    monkeypatch.setattr(metrics_counts, "_instruments", instruments)
    assert metrics.provider_label("gu1") == "gu1"
    assert metrics.provider_label("../../etc/passwd") == metrics.OTHER
    assert metrics.provider_label(None) == metrics.OTHER
    metrics.count_tracking("no-such-provider", "rejected")
    metrics.count_tracking("gu1", "something else")
    observer.polls_deferred("notus", "a new reason", 2)
    observer.call_finished("unheard-of", 0.1, "answered")
    text = generate_latest(registry).decode()
    assert 'provider="other",result="rejected"' in text
    assert 'provider="gu1",result="other"' in text
    assert 'provider="notus",reason="other"' in text
    assert "no-such-provider" not in text and "unheard-of" not in text


def test_relayed_events_and_failures_are_counted(registry, instruments, monkeypatch):
    monkeypatch.setattr(metrics_counts, "_instruments", instruments)
    metrics.count_relayed(metrics.RELAY_AFTER_POLL, 3)
    metrics.count_relayed(metrics.RELAY_BEAT, 2, failed=True)
    metrics.count_relayed(metrics.RELAY_BEAT, 0, failed=True)
    published = "kyc_poller_events_published_total"
    assert value(registry, published, relay="after_poll") == 3
    assert value(registry, published, relay="beat") == 2
    assert value(registry, "kyc_poller_event_publish_failures_total", relay="beat") == 2


# -- the catalog -------------------------------------------------------------------------


def test_the_instruments_export_exactly_the_worker_catalog(registry, instruments):
    families = {family.name: family for family in registry.collect()}
    assert set(families) == {spec.family for spec in metrics.WORKER_METRICS}
    for spec in metrics.WORKER_METRICS:
        assert families[spec.family].type == spec.kind, spec.name


def test_the_fleet_collector_describes_its_catalog_without_reading_anything():
    collector = metrics.FleetCollector(db=None, governor=None)  # type: ignore[arg-type]
    families = {family.name: family for family in collector.describe()}
    assert set(families) == {spec.family for spec in metrics.FLEET_METRICS}
    for spec in metrics.FLEET_METRICS:
        assert families[spec.family].type == spec.kind, spec.name


def test_names_and_labels_follow_the_conventions():
    names = [spec.name for spec in metrics.EXPORTED_METRICS]
    assert len(names) == len(set(names))
    for spec in metrics.EXPORTED_METRICS:
        assert spec.name.startswith("kyc_poller_"), spec.name
        assert spec.name.endswith("_total") == (spec.kind == "counter"), spec.name
        if spec.kind == "histogram":
            assert spec.name.endswith("_seconds") and spec.buckets, spec.name
        assert spec.help.endswith("."), spec.name
        # Bounded labels only: nothing that could be an id or free text.
        assert set(spec.labels) <= {
            "provider",
            "outcome",
            "error_code",
            "result",
            "to_status",
            "reason",
            "state",
            "relay",
            "status",
            "source",
            "task",  # a kyc-poller task name, else "other"
            "queue",  # a kyc-poller queue, else "other"
            "provider_status",  # an unknown word, bounded by worker.domain.unknown_words
            "trigger",  # needs_reverification | expired
            "route",  # the HTTP service's routes (webhook, api, health, metrics, docs)
        }, spec.name


def test_the_exposition_parses(registry, observer, store, clock):
    engine(store, ScriptedAdapter("gu1", [result("approved")]), clock, observer).poll_batch(
        add(store, clock, 2, provider="gu1")
    )
    families = {f.name for f in text_string_to_metric_families(generate_latest(registry).decode())}
    assert "kyc_poller_polls" in families
    assert "kyc_poller_provider_call_duration_seconds" in families


# -- settings and the multiprocess directory ------------------------------------------------


def test_metrics_settings_from_the_environment():
    assert Settings.from_env({}).metrics_port == metrics.DEFAULT_METRICS_PORT
    settings = Settings.from_env(
        {
            "KYC_METRICS_PORT": "0",
            "KYC_METRICS_ADDR": "127.0.0.1",
            "KYC_METRICS_DIR": "/var/run/kyc-metrics",
            "KYC_METRICS_CACHE_SECONDS": "5",
        }
    )
    assert settings.metrics_port == 0
    assert settings.metrics_addr == "127.0.0.1"
    assert settings.metrics_dir == "/var/run/kyc-metrics"
    assert settings.metrics_cache_seconds == 5
    for bad in ("-1", "65536", "http"):
        with pytest.raises(ConfigurationError, match="KYC_METRICS_PORT"):
            Settings.from_env({"KYC_METRICS_PORT": bad})


def test_a_fresh_directory_per_process_group_and_stale_ones_removed(tmp_path, monkeypatch):
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    stale = tmp_path / "999999999"  # no such pid
    stale.mkdir()
    (stale / "counter_999999999.db").write_bytes(b"x")
    alive = tmp_path / "1"  # init: running
    alive.mkdir()
    mine = tmp_path / str(os.getpid())
    mine.mkdir()
    (mine / "counter_old.db").write_bytes(b"x")

    path = metrics.prepare_multiprocess_dir(tmp_path)

    assert path == mine and path.is_dir() and list(path.iterdir()) == []
    assert os.environ[metrics.MULTIPROC_ENV] == str(path)
    assert not stale.exists()
    assert alive.exists()
    metrics_process._remove_directory(path, os.getpid() + 1)  # another process's exit: kept
    assert path.exists()
    metrics_process._remove_directory(path, os.getpid())
    assert not path.exists()


def test_metrics_off_means_no_directory(tmp_path, monkeypatch):
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path / "inherited"))
    settings = Settings.from_env({"KYC_METRICS_PORT": "0", "KYC_METRICS_DIR": str(tmp_path)})
    assert metrics.prepare_process_metrics(settings) is None
    assert metrics.MULTIPROC_ENV not in os.environ
    assert list(tmp_path.iterdir()) == []


def test_unknown_words_syncs_and_reverifications_are_counted_with_bounded_labels(
    registry, observer
):
    observer.unknown_status("notus", "ON_HOLD")
    observer.unknown_status("notus", "ON_HOLD")
    observer.sync_finished("gu1", "accepted")
    observer.sync_finished("gu1", "a word no one knows")
    observer.reverification_due("gu1", "expired")
    observer.reverification_due("../x", "whatever")
    name = "kyc_poller_unknown_provider_status_total"
    assert value(registry, name, provider="notus", provider_status="ON_HOLD") == 2
    syncs = "kyc_poller_provider_syncs_total"
    assert value(registry, syncs, provider="gu1", outcome="accepted") == 1
    assert value(registry, syncs, provider="gu1", outcome="other") == 1
    due = "kyc_poller_reverifications_due_total"
    assert value(registry, due, provider="gu1", trigger="expired") == 1
    assert value(registry, due, provider="other", trigger="other") == 1
