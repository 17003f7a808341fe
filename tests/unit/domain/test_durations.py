"""The one parser of durations and times people type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from worker.domain import durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("1w", 604800), ("1h30m", 5400)],
)
def test_durations(text, seconds):
    assert durations.parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "2", "2x", "h", "-1h", "0s", "1h then 2m", "99999w"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError):
        durations.parse_duration(text)


def test_since_takes_a_duration_or_a_zoned_time():
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert durations.parse_since("15m", now) == now - timedelta(minutes=15)
    assert durations.parse_since("2026-11-23T11:00:00Z", now) == datetime(
        2026, 11, 23, 11, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="time zone"):
        durations.parse_since("2026-11-23T11:00:00", now)
    with pytest.raises(ValueError, match="neither"):
        durations.parse_since("last tuesday", now)


def test_moments_need_a_zone_and_quote_little_of_the_input():
    assert durations.parse_moment("2026-11-23T11:00:00+01:00").utcoffset() == timedelta(hours=1)
    with pytest.raises(ValueError, match="no time zone"):
        durations.parse_moment("2026-11-23T11:00:00")
    with pytest.raises(ValueError) as refused:
        durations.parse_moment("x" * 500)
    assert len(str(refused.value)) < 120


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "5s"), (-42, "42s"), (307, "5m07s"), (3 * 3600 + 300, "3h05m"), (52 * 3600, "2d04h")],
)
def test_spans_for_people(seconds, text):
    assert durations.format_span(seconds) == text
