"""Beat's fleet gauges over real databases and Redis, and the counters the tasks keep."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import redis
from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy import update

from models import OutboxEvent, Verification
from models.db import Database
from tasks.verification_tasks import poll_verification, relay_outbox, track_verification
from tests.doubles import FakeClock
from worker.adapters import metrics
from worker.domain.statuses import VerificationStatus as S
from worker.entrypoints.migrate import upgrade
from worker.services.governor import BreakerSettings, ProviderGovernor, RateLimit


@pytest.fixture
def clock() -> FakeClock:
    from models import utcnow

    return FakeClock(utcnow())


@pytest.fixture
def governor(redis_url) -> ProviderGovernor:
    client = redis.Redis.from_url(redis_url)
    rates = {"notus": RateLimit(5, 10), "gu1": RateLimit(0, 1)}
    return ProviderGovernor(client, BreakerSettings(min_faults=3), rates)


def scrape(collector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def sample(registry, name, **labels):
    return registry.get_sample_value(name, labels)


def add_verification(session, provider, status, *, next_poll_at=None, n=[0]) -> Verification:  # noqa: B006
    n[0] += 1
    row = Verification(
        provider=provider,
        external_id=f"fleet-{n[0]}",
        status=status,
        next_poll_at=next_poll_at,
        version=1,
    )
    session.add(row)
    session.flush()
    return row


def add_event(session, verification, *, created_at, published_at=None) -> None:
    session.add(
        OutboxEvent(
            event_id=str(uuid.uuid4()),
            event_type="verification.status_changed",
            verification_id=verification.id,
            payload={"provider": verification.provider},
            created_at=created_at,
            published_at=published_at,
        )
    )


def test_fleet_gauges_read_the_database_and_the_governor(db, governor, clock):
    now = clock()
    collector = metrics.FleetCollector(db, governor, cache_seconds=0, clock=clock)
    with db.session() as session, session.begin():
        due = [
            add_verification(session, "notus", S.PENDING, next_poll_at=now - timedelta(seconds=s))
            for s in (5, 90)
        ]
        add_verification(session, "notus", S.IN_REVIEW, next_poll_at=now + timedelta(minutes=5))
        approved = add_verification(session, "gu1", S.APPROVED)
        add_verification(session, "gu1", S.REJECTED)
        add_event(session, due[0], created_at=now - timedelta(seconds=40))
        add_event(session, due[1], created_at=now - timedelta(seconds=10))
        # Published after the collector started: latencies 0.5 s and 3 s.
        add_event(
            session,
            approved,
            created_at=now + timedelta(seconds=10),
            published_at=now + timedelta(seconds=10.5),
        )
        add_event(
            session,
            approved,
            created_at=now + timedelta(seconds=20),
            published_at=now + timedelta(seconds=23),
        )
    governor.record("notus", successes=0, faults=5)  # opens notus' circuit
    governor.pause("gu1")

    registry = scrape(collector)
    verifications = "kyc_poller_verifications"
    assert sample(registry, verifications, provider="notus", status="pending") == 2
    assert sample(registry, verifications, provider="notus", status="in_review") == 1
    assert sample(registry, verifications, provider="gu1", status="approved") == 1
    assert sample(registry, verifications, provider="predicate", status="approved") == 0
    assert sample(registry, "kyc_poller_due_verifications", provider="notus") == 2
    assert sample(registry, "kyc_poller_due_verifications", provider="gu1") == 0
    oldest = sample(registry, "kyc_poller_due_oldest_age_seconds", provider="notus")
    assert oldest == pytest.approx(90, abs=1)
    assert sample(registry, "kyc_poller_due_oldest_age_seconds", provider="gu1") == 0
    assert sample(registry, "kyc_poller_outbox_unpublished_events") == 2
    unpublished_age = sample(registry, "kyc_poller_outbox_oldest_unpublished_age_seconds")
    assert unpublished_age == pytest.approx(40, abs=1)
    # Nothing published yet as far as the collector's clock goes.
    assert sample(registry, "kyc_poller_event_publish_latency_seconds_count") == 0

    assert sample(registry, "kyc_poller_circuit_state", provider="notus", state="open") == 1
    assert sample(registry, "kyc_poller_circuit_state", provider="notus", state="closed") == 0
    assert sample(registry, "kyc_poller_circuit_state", provider="gu1", state="closed") == 1
    assert sample(registry, "kyc_poller_circuit_window_faults", provider="notus") == 0
    assert sample(registry, "kyc_poller_provider_operator_paused", provider="gu1") == 1
    assert sample(registry, "kyc_poller_provider_operator_paused", provider="notus") == 0
    rate = "kyc_poller_provider_rate_limit_requests_per_second"
    assert sample(registry, rate, provider="notus") == 5
    assert sample(registry, rate, provider="gu1") == 0
    assert sample(registry, "kyc_poller_fleet_refresh_timestamp_seconds") > 0
    assert sample(registry, "kyc_poller_fleet_refresh_errors_total", source="database") == 0

    clock.advance(60)  # both published events are now settled: counted once each
    for _ in range(2):
        registry = scrape(collector)
        latency = "kyc_poller_event_publish_latency_seconds"
        assert sample(registry, f"{latency}_count") == 2
        assert sample(registry, f"{latency}_sum") == pytest.approx(3.5)
        assert sample(registry, f"{latency}_bucket", le="0.5") == 1
        assert sample(registry, f"{latency}_bucket", le="2.0") == 1
        assert sample(registry, f"{latency}_bucket", le="5.0") == 2
        assert sample(registry, f"{latency}_bucket", le="+Inf") == 2


def test_fleet_gauges_are_cached_between_scrapes(db, governor, clock):
    collector = metrics.FleetCollector(db, governor, cache_seconds=3600, clock=clock)
    registry = scrape(collector)
    name = "kyc_poller_verifications"
    assert sample(registry, name, provider="notus", status="pending") == 0
    with db.session() as session, session.begin():
        add_verification(session, "notus", S.PENDING, next_poll_at=clock())
    assert sample(scrape(collector), name, provider="notus", status="pending") == 0
    collector.cache_seconds = 0
    assert sample(scrape(collector), name, provider="notus", status="pending") == 1


def test_an_unreachable_database_or_redis_is_counted_not_raised(tmp_path, redis_url, clock):
    from devkit.embedded_redis import free_port

    unmigrated = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    down = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    governor = ProviderGovernor(down, BreakerSettings(), {})
    collector = metrics.FleetCollector(unmigrated, governor, cache_seconds=60, clock=clock)
    try:
        registry = scrape(collector)
        errors = "kyc_poller_fleet_refresh_errors_total"
        assert sample(registry, errors, source="database") == 1
        assert sample(registry, errors, source="redis") == 1
        assert (
            sample(registry, "kyc_poller_verifications", provider="notus", status="pending") is None
        )
        assert sample(registry, "kyc_poller_circuit_state", provider="notus", state="open") is None
        assert sample(registry, "kyc_poller_fleet_refresh_duration_seconds") >= 0
    finally:
        unmigrated.dispose()


# -- the tasks' counters (eager Celery, the global registry) ---------------------------------


class Delta:
    """How much samples of the global registry moved since this was made."""

    def __init__(self) -> None:
        self.before: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.before = self._samples()

    def _samples(self):
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in REGISTRY.collect()
            if family.name.startswith("kyc_poller_")
            for s in family.samples
        }

    def __call__(self, name, **labels) -> float:
        key = (name, tuple(sorted(labels.items())))
        return self._samples().get(key, 0.0) - self.before.get(key, 0.0)


def test_the_tasks_count_tracking_polls_and_published_events(runtime_env, fake_providers):
    fake_providers.add_session("gu1", "val-metrics-1", ["approved"])
    delta = Delta()
    vid = track_verification.delay("gu1", "val-metrics-1").get()["verification_id"]
    track_verification.delay("gu1", "val-metrics-1").get()
    with pytest.raises(ValueError):
        track_verification.delay("gu1", "not an id!").get()
    with pytest.raises(ValueError):
        track_verification.delay("someone-else", "x").get()
    tracking = "kyc_poller_tracking_requests_total"
    assert delta(tracking, provider="gu1", result="created") == 1
    assert delta(tracking, provider="gu1", result="existing") == 1
    assert delta(tracking, provider="gu1", result="rejected") == 1
    assert delta(tracking, provider="other", result="rejected") == 1

    assert poll_verification.delay(vid).get()["outcomes"] == {"transition": 1}
    polls = "kyc_poller_polls_total"
    assert delta(polls, provider="gu1", outcome="transition", error_code="") == 1
    transitions = "kyc_poller_transitions_total"
    assert delta(transitions, provider="gu1", to_status="approved", reason="provider") == 1
    assert delta("kyc_poller_provider_call_duration_seconds_count", provider="gu1") == 1
    # The batch published its own event (no relay turn); the ordered relay had none left.
    assert delta("kyc_poller_events_published_total", relay="direct") == 1
    assert delta("kyc_poller_events_published_total", relay="after_poll") == 0

    # An event the poll could not publish (left in the outbox) goes out with the beat relay.
    with runtime_env.db.session() as session, session.begin():
        session.execute(update(OutboxEvent).values(published_at=None))
    runtime_env.redis.flushdb()  # forget the dedupe key: it is published again
    assert relay_outbox.delay().get() == 1
    assert delta("kyc_poller_events_published_total", relay="beat") == 1
    assert delta("kyc_poller_event_publish_failures_total", relay="beat") == 0


# -- the demo's progress display -------------------------------------------------------------


def test_the_demo_prints_progress_and_a_summary(sqlite_url, monkeypatch, capsys):
    from devkit import demo

    upgrade(sqlite_url)
    database = Database(sqlite_url)
    try:
        with database.session() as session, session.begin():
            add_verification(session, "notus", S.APPROVED).total_polls = 3
            add_verification(session, "gu1", S.REJECTED).total_polls = 2
            add_verification(session, "gu1", S.IN_REVIEW, next_poll_at=None).total_polls = 1
    finally:
        database.dispose()
    progress = demo._Progress(sqlite_url, total=4)
    progress.tick(events_received=5)  # not yet: a line every PROGRESS_INTERVAL
    assert capsys.readouterr().out == ""
    progress.next_at = 0
    progress.tick(events_received=5)
    line = capsys.readouterr().out.strip()
    assert line.startswith("progress ")
    assert "terminal 2/4" in line and "events 5 received / 0 committed" in line
    assert "polls 6" in line and "outbox 0 waiting" in line
    summary = progress.summary([{"event_id": "e"}])
    progress.close()
    assert summary.startswith("summary:  2/4 terminal in ")
    assert "(approved 1, rejected 1)" in summary and "6 polls" in summary
    assert "1 events received" in summary


def test_fleet_gauges_show_each_providers_safety_net_on_real_redis(db, redis_url, clock):
    from worker.domain.safety_net import FoundTransition, SafetyNetSettings
    from worker.services.hints import record_hints
    from worker.services.safety_net import HintedSafetyNet

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    settings = SafetyNetSettings(window=10, min_transitions=5)
    net = HintedSafetyNet(client, settings, ["gu1", "notus"], clock=lambda: clock().timestamp())
    since = clock().timestamp() - 60
    record_hints(client, "gu1", range(1, 10), clock())  # 9 of 10 gu1 transitions hinted
    net.record_transitions(FoundTransition("gu1", i, since) for i in range(1, 11))
    net.record_transitions(FoundTransition("notus", i, since) for i in range(11, 21))
    collector = metrics.FleetCollector(db, None, cache_seconds=0, clock=clock, safety_net=net)
    try:
        registry = scrape(collector)
        assert sample(registry, "kyc_poller_safety_net_stretched", provider="gu1") == 1
        assert sample(registry, "kyc_poller_hinted_transition_share", provider="gu1") == 0.9
        assert sample(registry, "kyc_poller_safety_net_stretched", provider="notus") == 0
        assert sample(registry, "kyc_poller_hinted_transition_share", provider="notus") == 0
        # Beat only reads: the fleet's switch is still the workers' to report.
        assert client.get("kyc-poller:safety-net:gu1") is None
        assert net.stretches() == {"gu1": settings.factor}
        assert client.get("kyc-poller:safety-net:gu1") == b"stretched"
    finally:
        client.close()
