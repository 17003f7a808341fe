import importlib.util
import random
import sys
from pathlib import Path

import pytest

from worker.domain.statuses import VerificationStatus

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "simulate_schedule.py"


def load_simulator():
    spec = importlib.util.spec_from_file_location("simulate_schedule", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


sim = load_simulator()
A, B = sim.DEFAULT_DISTRIBUTIONS


def constant(interval):
    return lambda provider, status, seconds, polls, rng: interval


def test_runs_on_a_small_input_and_prints_every_policy_and_goal(capsys):
    assert sim.main(["--verifications", "60", "--seeds", "1", "--min-samples", "20"]) == 0
    out = capsys.readouterr().out
    for name in ("today", "fixed 60 s", "fixed 300 s", "fixed 600 s", "static", "adaptive"):
        assert out.count(name) >= 2  # a row per distribution
    assert "Distribution A" in out and "Distribution B" in out
    goals = [line for line in out.splitlines() if line.strip().startswith(("PASS", "FAIL"))]
    assert len(goals) == 8


def test_fixed_interval_closed_form_matches_polling_it():
    lifecycles = sim.draw_lifecycles(A, 200, seed=3)
    # A power of two: the simulated poll times are exact, so the two must agree exactly.
    polled = sim.simulate(lifecycles, constant(256.0), random.Random(0))
    closed = sim.fixed_interval(lifecycles, 256.0)
    assert polled.requests == closed.requests
    assert polled.delays == closed.delays
    assert polled.first_change_delays == closed.first_change_delays


@pytest.mark.parametrize("interval", [60.0, 300.0, 600.0])
def test_fixed_interval_waits_half_an_interval_on_average(interval):
    lifecycles = sim.draw_lifecycles(A, 3000, seed=1)
    result = sim.fixed_interval(lifecycles, interval)
    reviews = result.delays[1::2]  # the decision: far from tracking, any phase
    assert sim.mean(reviews) == pytest.approx(interval / 2, rel=0.05)
    assert sim.percentile(reviews, 0.95) == pytest.approx(0.95 * interval, rel=0.03)
    duration = sim.mean([lifecycle[-1][0] for lifecycle in lifecycles])
    assert result.mean_requests == pytest.approx(duration / interval + 1.5, rel=0.02)


def test_the_interval_for_equal_requests_inverts_the_request_count():
    lifecycles = sim.draw_lifecycles(B, 500, seed=2)
    for requests in (8.0, 20.0, 45.0):
        interval = sim.interval_for_requests(lifecycles, requests)
        assert sim.fixed_requests(lifecycles, interval) == pytest.approx(requests, rel=0.01)


def test_policies_see_what_the_decision_rules_see():
    calls = []

    def spy(provider, status, seconds, polls, rng):
        calls.append((status, round(seconds), polls))
        return 100.0

    lifecycle = (
        (0.0, VerificationStatus.PENDING),
        (250.0, VerificationStatus.IN_REVIEW),
        (520.0, VerificationStatus.APPROVED),
    )
    history = sim.defaultdict(list)
    result = sim.simulate([lifecycle], spy, random.Random(0), history)
    pending, review = VerificationStatus.PENDING, VerificationStatus.IN_REVIEW
    # Polls at 0, 100, 200 (pending), 300 (sees in_review), 400, 500, 600 (sees approved).
    assert calls == [
        (pending, 0, 1),
        (pending, 100, 2),
        (pending, 200, 3),
        (review, 0, 0),
        (review, 100, 1),
        (review, 200, 2),
    ]
    assert result.requests == [7]
    assert result.delays == [50.0, 80.0]
    assert result.first_change_delays == [50.0]
    assert history[("gu1", pending)] == [300.0]
    assert history[("gu1", review)] == [300.0]


def test_today_policy_resets_its_backoff_on_a_change():
    policy = sim.today_policy(sim.BackoffSettings())
    rng = random.Random(4)
    right_after_change = [
        policy("gu1", VerificationStatus.IN_REVIEW, 0, 0, rng) for _ in range(200)
    ]
    assert all(1.0 <= delay <= 5.0 for delay in right_after_change)
    later = [policy("gu1", VerificationStatus.IN_REVIEW, 9000, 20, rng) for _ in range(200)]
    assert max(later) > 600 and all(delay <= 900 for delay in later)


def test_a_skipped_status_counts_both_changes():
    lifecycle = (
        (0.0, VerificationStatus.PENDING),
        (10.0, VerificationStatus.IN_REVIEW),
        (20.0, VerificationStatus.APPROVED),
    )
    result = sim.simulate([lifecycle], constant(64.0), random.Random(0))
    assert result.delays == [54.0, 44.0]
    assert result.requests == [2]


def test_percentile_interpolates_between_ranks():
    assert sim.percentile([1, 2, 3, 4, 5], 0.5) == 3
    assert sim.percentile([0, 10], 0.95) == pytest.approx(9.5)
    assert sim.percentile([7], 0.95) == 7


def test_lifecycle_options_parse():
    distribution = sim.parse_lifecycle("C=30s-2m/5m~1h")
    assert distribution.name == "C"
    assert distribution.user == sim.Span(30.0, 120.0, False)
    assert distribution.review == sim.Span(300.0, 3600.0, True)
    rng = random.Random(0)
    assert all(300 <= distribution.review.draw(rng) <= 3600 for _ in range(100))
    for bad in ("C=2m-20m", "2m-20m/1h-2h", "C=20m-2m/1h-2h", "C=2x-3m/1h-2h"):
        with pytest.raises(ValueError):
            sim.parse_lifecycle(bad)
