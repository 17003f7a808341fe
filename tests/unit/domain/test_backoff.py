import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from worker.domain.backoff import BackoffSettings, backoff_ceiling, backoff_delay, next_poll_time

settings_strategy = st.builds(
    lambda floor, base, extra: BackoffSettings(base=base, cap=floor + base + extra, floor=floor),
    st.floats(min_value=0.0, max_value=10.0),
    st.floats(min_value=0.01, max_value=60.0),
    st.floats(min_value=0.0, max_value=3600.0),
)


@given(settings_strategy, st.integers(min_value=0, max_value=10_000), st.integers())
def test_delay_stays_between_floor_and_cap(settings, attempt, seed):
    delay = backoff_delay(attempt, settings, random.Random(seed))
    assert settings.floor <= delay <= max(settings.cap, settings.floor)


@given(settings_strategy, st.integers(min_value=0, max_value=200))
def test_ceiling_never_shrinks_as_attempts_grow(settings, attempt):
    assert backoff_ceiling(attempt + 1, settings) >= backoff_ceiling(attempt, settings)


def test_ceiling_doubles_until_the_cap():
    settings = BackoffSettings(base=2.0, cap=50.0, floor=0.5)
    assert [backoff_ceiling(n, settings) for n in range(6)] == [2.0, 4.0, 8.0, 16.0, 32.0, 50.0]
    assert backoff_ceiling(10_000, settings) == 50.0


def test_full_jitter_spreads_delays_over_the_whole_range():
    settings = BackoffSettings(base=10.0, cap=1000.0, floor=0.0)
    rng = random.Random(42)
    delays = [backoff_delay(3, settings, rng) for _ in range(2000)]  # ceiling 80
    assert min(delays) < 8.0
    assert max(delays) > 72.0
    assert 35.0 < sum(delays) / len(delays) < 45.0  # uniform mean is 40


def test_floor_stops_a_near_zero_draw_from_hammering_the_provider():
    settings = BackoffSettings(base=1.0, cap=10.0, floor=3.0)

    class ZeroRandom(random.Random):
        def uniform(self, a, b):
            return a

    assert backoff_delay(0, settings, ZeroRandom()) == 3.0


def test_retry_after_raises_the_delay_but_is_clamped_to_the_cap():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    settings = BackoffSettings(base=1.0, cap=120.0, floor=1.0)
    rng = random.Random(1)
    assert next_poll_time(now, 0, settings, rng, at_least=30.0) == now + timedelta(seconds=30)
    far = next_poll_time(now, 0, settings, rng, at_least=10**9)
    assert far == now + timedelta(seconds=120)
    short = next_poll_time(now, 0, settings, random.Random(1), at_least=0.0)
    assert now + timedelta(seconds=1) <= short <= now + timedelta(seconds=1)
