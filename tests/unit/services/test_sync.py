"""gu1 sync of stuck validations: the rule, the governor's fleet-wide cap, the engine.

The engine tests run over the in-memory store with a scripted adapter; the HTTP
path against the fake gu1 is in tests/integration/services/test_sync_and_reverification.py.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import fakeredis
import pytest

from tests.doubles import NO_TRANSPORT, FakeClock, ScriptedAdapter, result, run_coroutine
from worker.adapters.memory_store import MemoryStore
from worker.config import Settings
from worker.domain.actions import ActionKind
from worker.domain.decisions import PollPolicy, StoredVerification
from worker.domain.errors import ConfigurationError
from worker.domain.statuses import VerificationStatus as S
from worker.domain.sync import DEFAULT_SYNC_AFTER, SyncAttempt, SyncPolicy, sync_due
from worker.services.governor import BreakerSettings, ProviderGovernor, RateLimit
from worker.services.polling import PollEngine

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HOUR = 3600.0
POLICY = SyncPolicy(
    after_seconds={S.IN_PROGRESS: HOUR, S.IN_REVIEW: 6 * HOUR}, window_seconds=24 * HOUR
)


def row(status: S = S.IN_PROGRESS, in_status: float = 2 * HOUR, **changes) -> StoredVerification:
    return StoredVerification(
        id=1,
        provider="gu1",
        external_id="val-1",
        verification_type=None,
        status=status,
        provider_status=status.value,
        version=1,
        created_at=NOW - timedelta(days=2),
        status_since=NOW - timedelta(seconds=in_status),
        **changes,
    )


def test_a_row_is_synced_after_its_statuss_age_and_not_before():
    assert sync_due(row(in_status=HOUR), NOW, POLICY)
    assert not sync_due(row(in_status=HOUR - 1), NOW, POLICY)
    assert not sync_due(row(S.IN_REVIEW, in_status=5 * HOUR), NOW, POLICY)
    assert sync_due(row(S.IN_REVIEW, in_status=6 * HOUR), NOW, POLICY)
    assert not sync_due(row(S.PENDING, in_status=100 * HOUR), NOW, POLICY)  # not in the policy
    assert not sync_due(row(S.APPROVED, in_status=100 * HOUR), NOW, POLICY)


def test_at_most_once_per_window():
    synced = NOW - timedelta(hours=23)
    assert not sync_due(row(last_sync_at=synced), NOW, POLICY)
    assert sync_due(row(last_sync_at=NOW - timedelta(hours=24)), NOW, POLICY)


def test_a_cap_of_zero_or_no_ages_turn_syncing_off():
    assert not sync_due(row(), NOW, SyncPolicy(max_per_minute=0))
    assert not sync_due(row(), NOW, SyncPolicy(after_seconds={}))


def test_policies_that_make_no_sense_are_refused():
    with pytest.raises(ValueError, match="terminal"):
        SyncPolicy(after_seconds={S.APPROVED: 1.0})
    with pytest.raises(ValueError, match="greater than 0"):
        SyncPolicy(after_seconds={S.PENDING: 0.0})
    with pytest.raises(ValueError, match="window"):
        SyncPolicy(window_seconds=0)


def test_settings_read_the_policy_and_refuse_bad_values():
    default = Settings.from_env({}).policy.sync
    assert dict(default.after_seconds) == dict(DEFAULT_SYNC_AFTER)
    assert (default.window_seconds, default.max_per_minute) == (86400.0, 60)
    env = {
        "KYC_SYNC_AFTER_SECONDS": "In_Progress=600, in_review=7200",
        "KYC_SYNC_WINDOW_SECONDS": "3600",
        "KYC_SYNC_MAX_PER_MINUTE": "6",
    }
    policy = Settings.from_env(env).policy.sync
    assert dict(policy.after_seconds) == {S.IN_PROGRESS: 600.0, S.IN_REVIEW: 7200.0}
    assert (policy.window_seconds, policy.max_per_minute) == (3600.0, 6)
    assert Settings.from_env({"KYC_SYNC_AFTER_SECONDS": "off"}).policy.sync.enabled is False
    for bad in ("approved=60", "in_review", "in_review=0", "reviewing=60", "pending=1,pending=2"):
        with pytest.raises(ConfigurationError, match="KYC_SYNC_AFTER_SECONDS"):
            Settings.from_env({"KYC_SYNC_AFTER_SECONDS": bad})
    with pytest.raises(ConfigurationError, match="KYC_SYNC_WINDOW_SECONDS"):
        Settings.from_env({"KYC_SYNC_WINDOW_SECONDS": "0"})


class SecondsClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def governor(server, clock, rate: RateLimit) -> ProviderGovernor:
    return ProviderGovernor(
        fakeredis.FakeRedis(server=server), BreakerSettings(), {"gu1": rate}, clock=clock
    )


def test_the_fleet_never_syncs_more_than_n_in_any_minute():
    server, clock = fakeredis.FakeServer(), SecondsClock()
    workers = [governor(server, clock, RateLimit()) for _ in range(3)]  # three workers
    granted_at: list[float] = []
    for _ in range(600):  # 5 minutes in 0.5 s steps, every worker asking for 4 each time
        for worker in workers:
            granted_at += [clock.now] * worker.admit_sync("gu1", 4, per_minute=6)
        clock.now += 0.5
    assert len(granted_at) == 30  # 6 a minute for 5 minutes
    for start in granted_at:
        assert sum(1 for t in granted_at if start <= t < start + 60) <= 6


def test_syncs_spend_the_providers_rate_limit_too():
    server, clock = fakeredis.FakeServer(), SecondsClock()
    gov = governor(server, clock, RateLimit(per_second=1, burst=2))
    assert gov.admit("gu1", 2).granted == 2  # the polls took the burst
    assert gov.admit_sync("gu1", 1, per_minute=60) == 0  # no token left for a sync
    clock.now += 1.0
    assert gov.admit_sync("gu1", 1, per_minute=60) == 1
    assert gov.admit("gu1", 1).granted == 0  # the sync took that second's token
    assert gov.admit_sync("gu1", 5, per_minute=0) == 0


def engine(store, adapter, clock, policy: PollPolicy, governor=None) -> PollEngine:
    return PollEngine(
        store,
        {adapter.name: adapter},
        NO_TRANSPORT,
        policy,
        runner=run_coroutine,
        governor=governor,
        clock=clock,
        rng=random.Random(2),
    )


def stuck_store(clock: FakeClock, n: int = 1) -> tuple[MemoryStore, list[int]]:
    store = MemoryStore()
    ids = [store.add("gu1", f"val-{i}", now=clock()) for i in range(n)]
    return store, ids


def test_a_stuck_validation_is_synced_once_then_polled_and_the_sync_is_recorded():
    clock = FakeClock()
    store, (vid,) = stuck_store(clock)
    adapter = ScriptedAdapter(
        "gu1",
        [result("in_progress", "in_progress"), result("approved", "approved")],
        syncs=[SyncAttempt.accepted(200, "in_progress")],
    )
    policy = PollPolicy(sync=POLICY, max_age_seconds=30 * 86400)
    poller = engine(store, adapter, clock, policy)
    poller.poll_batch([vid])  # pending -> in_progress: fresh, no sync
    assert adapter.sync_calls == []
    clock.advance(2 * HOUR)
    report = poller.poll_batch([vid])
    assert adapter.log[-2:] == [("sync", "val-0"), ("status", "val-0")]  # sync, then poll
    assert report.transitions == 1
    assert store.rows[vid].stored.status is S.APPROVED
    assert store.rows[vid].stored.last_sync_at == clock()
    ((synced_id, action),) = store.actions
    assert (synced_id, action.kind, action.outcome, action.http_status, action.detail) == (
        vid,
        ActionKind.SYNC,
        "accepted",
        200,
        "in_progress",
    )
    assert action.occurred_at == clock()
    assert [t.to_status for _, t in store.transitions] == [S.IN_PROGRESS, S.APPROVED]
    assert len(store.events) == 2  # the sync is no transition and no event


def test_within_the_window_a_stuck_row_is_only_polled_and_a_failed_sync_counts():
    clock = FakeClock()
    store, (vid,) = stuck_store(clock)
    adapter = ScriptedAdapter(
        "gu1",
        [result("in_progress", "in_progress")],
        syncs=[SyncAttempt("server_error", 503)],
    )
    poller = engine(store, adapter, clock, PollPolicy(sync=POLICY, max_age_seconds=1e9))
    poller.poll_batch([vid])
    for _ in range(10):  # hourly polls for 10 h: one sync only
        clock.advance(2 * HOUR)
        poller.poll_batch([vid])
    assert len(adapter.sync_calls) == 1
    assert [a.outcome for _, a in store.actions] == ["server_error"]
    clock.advance(24 * HOUR)
    poller.poll_batch([vid])
    assert len(adapter.sync_calls) == 2


def test_the_governor_caps_syncs_and_the_rest_are_polled_without_one():
    clock = FakeClock()
    store, ids = stuck_store(clock, 5)
    adapter = ScriptedAdapter(
        "gu1", [result("in_progress", "in_progress")], syncs=[SyncAttempt.accepted(200)]
    )
    gov = ProviderGovernor(
        fakeredis.FakeRedis(),
        BreakerSettings(),
        {"gu1": RateLimit()},
        clock=lambda: clock().timestamp(),
    )
    policy = PollPolicy(sync=SyncPolicy(after_seconds={S.IN_PROGRESS: HOUR}, max_per_minute=2))
    poller = engine(store, adapter, clock, policy, governor=gov)
    poller.poll_batch(ids)
    clock.advance(2 * HOUR)
    report = poller.poll_batch(ids)
    assert report.polled == 5
    assert len(adapter.sync_calls) == 1  # burst of one, then one every 30 s
    clock.advance(30)
    poller.poll_batch(ids)
    assert len(adapter.sync_calls) == 2
    assert len({vid for vid, _ in store.actions}) == 2


def test_a_crashing_sync_is_recorded_as_an_internal_error_and_the_poll_still_happens():
    clock = FakeClock()
    store, (vid,) = stuck_store(clock)
    adapter = ScriptedAdapter(
        "gu1", [result("in_progress", "in_progress")], syncs=[KeyError("boom")]
    )
    poller = engine(store, adapter, clock, PollPolicy(sync=POLICY, max_age_seconds=1e9))
    poller.poll_batch([vid])
    clock.advance(2 * HOUR)
    poller.poll_batch([vid])
    assert [a.outcome for _, a in store.actions] == ["internal_error"]
    assert adapter.calls == 2


def test_providers_without_a_sync_are_never_synced():
    clock = FakeClock()
    store = MemoryStore()
    vid = store.add("notus", "sess-1", now=clock())
    adapter = ScriptedAdapter("notus", [result("in_progress", "VERIFYING")])
    poller = engine(store, adapter, clock, PollPolicy(sync=POLICY, max_age_seconds=1e9))
    for _ in range(5):
        poller.poll_batch([vid])
        clock.advance(10 * HOUR)
    assert store.actions == [] and store.rows[vid].stored.last_sync_at is None
