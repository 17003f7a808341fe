"""The provider governor's rate limit and circuit breaker, on fakeredis with a fake clock.

Two governors on one Redis stand for two workers of the fleet.
"""

from __future__ import annotations

import fakeredis
import pytest

from worker.services.governor import (
    BreakerSettings,
    CircuitState,
    ProviderGovernor,
    RateLimit,
)

BREAKER = BreakerSettings(
    window_seconds=30,
    min_faults=5,
    fault_ratio=0.5,
    cooldown_seconds=5,
    max_cooldown_seconds=20,
    probes=2,
    probe_timeout_seconds=10,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


def governor(server, clock, rate: RateLimit | None = None) -> ProviderGovernor:
    client = fakeredis.FakeRedis(server=server)
    return ProviderGovernor(client, BREAKER, {"notus": rate or RateLimit()}, clock=clock)


def test_without_a_rate_limit_everything_is_admitted(server, clock):
    admission = governor(server, clock).admit("notus", 500)
    assert admission.granted == 500
    assert admission.state is CircuitState.CLOSED


def test_the_rate_limit_is_shared_by_the_whole_fleet(server, clock):
    rate = RateLimit(per_second=10, burst=20)
    first, second = governor(server, clock, rate), governor(server, clock, rate)
    assert first.admit("notus", 15).granted == 15
    burst_left = second.admit("notus", 15)
    assert burst_left.granted == 5
    assert burst_left.limited_by == "rate_limited"
    assert 0 < burst_left.wait_seconds <= 0.2
    clock.now += 1.0  # ten more tokens a second, for everyone
    assert first.admit("notus", 100).granted == 10
    assert second.admit("notus", 100).granted == 0


@pytest.mark.parametrize("per_second", [3, 400, 2000, 7500])
def test_the_sustained_rate_is_the_configured_one(server, clock, per_second):
    # Intervals that are not whole milliseconds (2.5 ms at 400/s, 0.5 ms at 2000/s) must not
    # be rounded: rounding up once capped every rate at 1000/s and cut 400/s to 333/s.
    # A burst above one step's worth, so the steps do not cap what is granted.
    gov = governor(server, clock, RateLimit(per_second=per_second, burst=per_second // 20 + 10))
    granted = 0
    for _ in range(2000):  # 20 s in 10 ms steps
        clock.now += 0.01
        granted += gov.admit("notus", 10_000).granted
    assert granted == pytest.approx(per_second * 20, rel=0.01, abs=10)


def test_a_retry_after_pauses_the_provider_for_everyone(server, clock):
    first, second = governor(server, clock), governor(server, clock)
    first.record("notus", successes=3, faults=0, pause_seconds=30)
    paused = second.admit("notus", 10)
    assert paused.granted == 0 and paused.limited_by == "paused"
    assert 29 <= paused.wait_seconds <= 30
    assert second.claim_budget("notus", 2, 1000) == 0
    clock.now += 31
    assert second.admit("notus", 10).granted == 10


def test_faults_below_the_ratio_do_not_open_the_circuit(server, clock):
    gov = governor(server, clock)
    assert gov.record("notus", successes=20, faults=6) is None
    assert gov.admit("notus", 1).granted == 1


def test_the_circuit_opens_half_opens_and_closes(server, clock):
    worker_a, worker_b = governor(server, clock), governor(server, clock)
    assert worker_a.record("notus", successes=1, faults=3) is None
    assert worker_b.record("notus", successes=0, faults=2) is CircuitState.OPEN
    closed_for_now = worker_a.admit("notus", 50)
    assert closed_for_now.granted == 0 and closed_for_now.limited_by == "circuit_open"
    assert worker_a.claim_budget("notus", 2, 1000) == 0
    status = worker_a.status("notus")
    assert status.state is CircuitState.OPEN and 4 <= status.open_for_seconds <= 5

    clock.now += 5.1
    assert worker_a.claim_budget("notus", 2, 1000) == BREAKER.probes
    probe = worker_a.admit("notus", 50)
    assert probe.changed_to is CircuitState.HALF_OPEN
    assert probe.granted == BREAKER.probes
    assert worker_b.admit("notus", 50).granted == 0  # the probes are out
    assert worker_a.record("notus", successes=2, faults=0) is CircuitState.CLOSED
    assert worker_b.admit("notus", 50).granted == 50


def test_a_failed_probe_reopens_with_a_longer_cooldown_up_to_the_maximum(server, clock):
    gov = governor(server, clock)
    gov.record("notus", successes=0, faults=5)
    cooldowns = []
    for _ in range(4):
        opened = gov.status("notus").open_for_seconds
        cooldowns.append(round(opened))
        clock.now += opened + 0.01
        assert gov.admit("notus", 5).granted == BREAKER.probes
        assert gov.record("notus", successes=0, faults=1) is CircuitState.OPEN
    assert cooldowns == [5, 10, 20, 20]


def test_probes_whose_worker_died_are_replaced_after_the_probe_timeout(server, clock):
    gov = governor(server, clock)
    gov.record("notus", successes=0, faults=5)
    clock.now += 5.1
    assert gov.admit("notus", 5).granted == BREAKER.probes  # ... and never reported
    assert gov.admit("notus", 5).granted == 0
    clock.now += BREAKER.probe_timeout_seconds + 0.1
    assert gov.admit("notus", 5).granted == BREAKER.probes


def test_probes_are_not_spent_while_the_provider_is_paused(server, clock):
    gov = governor(server, clock)
    gov.record("notus", successes=0, faults=5)
    clock.now += 5.1  # the cooldown is over ...
    gov.record("notus", successes=0, faults=0, pause_seconds=3)  # ... but a 429 says wait
    waiting = gov.admit("notus", 5)
    assert waiting.granted == 0 and waiting.limited_by == "paused"
    clock.now += 3.1  # the pause is over: the probes go now, not a probe timeout later
    assert gov.admit("notus", 5).granted == BREAKER.probes


def test_probes_are_not_spent_when_the_rate_limit_refuses_them(server, clock):
    gov = governor(server, clock, RateLimit(per_second=1, burst=1))
    gov.record("notus", successes=0, faults=5)
    clock.now += 5.1
    other_worker = governor(server, clock, RateLimit(per_second=1, burst=1))
    other_worker.redis.set("kyc-poller:governor:notus:tat", f"{(clock.now + 5) * 1000:.3f}")
    refused = gov.admit("notus", 2)
    assert refused.granted == 0 and refused.limited_by == "rate_limited"
    clock.now += 5.5  # a token again; the probes were kept for it
    assert gov.admit("notus", 2).granted == 1


def test_the_claim_budget_follows_the_rate(server, clock):
    gov = governor(server, clock, RateLimit(per_second=50, burst=100))
    assert gov.claim_budget("notus", 2.0, 10_000) == 200
    assert gov.claim_budget("notus", 2.0, 150) == 150
    assert governor(server, clock).claim_budget("gu1", 2.0, 10_000) == 10_000


def test_providers_are_governed_separately(server, clock):
    gov = governor(server, clock)
    gov.record("notus", successes=0, faults=10)
    assert gov.admit("notus", 1).granted == 0
    assert gov.admit("gu1", 1).granted == 1
    gov.reset("notus")
    assert gov.admit("notus", 1).granted == 1


def test_an_operator_pause_stops_the_provider_until_resumed(server, clock):
    first, second = governor(server, clock), governor(server, clock)
    first.pause("notus")
    admission = second.admit("notus", 10)
    assert (admission.granted, admission.limited_by) == (0, "operator_paused")
    assert second.claim_budget("notus", 2, 100) == 0
    assert second.status("notus").paused_by_operator
    assert second.admit("gu1", 1).granted == 1
    first.resume("notus")
    assert second.admit("notus", 10).granted == 10
    assert not second.status("notus").paused_by_operator
