"""Settings read from the environment: defaults, and values that would break the fleet."""

from __future__ import annotations

import pytest

from worker.config import Settings
from worker.domain.errors import ConfigurationError


def test_event_ids_are_remembered_for_a_day_by_default():
    assert Settings.from_env({}).event_dedupe_ttl == 24 * 3600
    assert Settings.from_env({"KYC_EVENT_DEDUPE_TTL": "1"}).event_dedupe_ttl == 1


@pytest.mark.parametrize("value", ["0", "-5"])
def test_a_dedupe_ttl_redis_would_refuse_is_refused_here(value):
    # `SET ... EX 0` is an error in Redis: every relay run would stop at its first event.
    with pytest.raises(ConfigurationError, match="KYC_EVENT_DEDUPE_TTL"):
        Settings.from_env({"KYC_EVENT_DEDUPE_TTL": value})


@pytest.mark.parametrize(
    "name",
    [
        "KYC_SCHEDULE_INTERVAL",
        "KYC_RELAY_INTERVAL",
        "KYC_RETENTION_INTERVAL",
        "KYC_ADAPTIVE_REFRESH_SECONDS",
        "KYC_CLAIM_LEASE_SECONDS",
    ],
)
def test_a_period_or_lease_of_zero_is_refused(name):
    # A beat period of 0 is always due (beat would flood its queues); a lease of 0 sends
    # every poll batch already expired.
    with pytest.raises(ConfigurationError, match=f"{name} must be greater than 0"):
        Settings.from_env({name: "0"})
    assert Settings.from_env({name: "0.5"}) is not None


@pytest.mark.parametrize(
    "url", ["redis://cache:notaport/0", "http://cache:6379/0", "redis://:secret-pw@cache:99999/0"]
)
def test_a_redis_url_redis_py_cannot_open_is_refused_without_quoting_it(url):
    # Accepted, it became a raw ValueError traceback at the first use (CLI, workers).
    with pytest.raises(ConfigurationError, match="KYC_REDIS_URL must be") as info:
        Settings.from_env({"KYC_REDIS_URL": url})
    assert "secret-pw" not in str(info.value)


def test_redis_urls_of_every_kind_are_accepted():
    for url in ("redis://127.0.0.1:6379/0", "rediss://:pw@cache:6380/2", "unix:///run/r.sock"):
        assert Settings.from_env({"KYC_REDIS_URL": url}).redis_url == url


def test_a_status_maximum_gap_is_read_and_a_bad_one_refused_at_start():
    from worker.domain.statuses import VerificationStatus

    schedule = Settings.from_env({"KYC_POLL_MAX_GAP_IN_REVIEW": "600"}).policy.schedule
    assert schedule is not None
    assert schedule.max_gap(VerificationStatus.IN_REVIEW) == 600.0
    assert schedule.max_gap(VerificationStatus.PENDING) == 1800.0  # the default
    with pytest.raises(ConfigurationError, match="KYC_POLL_MAX_GAP_IN_REVIEW"):
        Settings.from_env({"KYC_POLL_MAX_GAP_IN_REVIEW": "0"})
    with pytest.raises(ConfigurationError, match="KYC_POLL_MAX_GAP_APPROVED"):
        Settings.from_env({"KYC_POLL_MAX_GAP_APPROVED": "600"})


def test_batches_publish_their_own_events_unless_switched_off():
    assert Settings.from_env({}).relay_direct is True
    for off in ("0", "false", "OFF", " no "):
        assert Settings.from_env({"KYC_RELAY_DIRECT": off}).relay_direct is False
    assert Settings.from_env({"KYC_RELAY_DIRECT": "on"}).relay_direct is True


def test_a_switch_that_is_neither_on_nor_off_is_refused():
    with pytest.raises(ConfigurationError, match="KYC_RELAY_DIRECT must be 1 or 0"):
        Settings.from_env({"KYC_RELAY_DIRECT": "sometimes"})


def test_the_safety_net_settings_are_read_and_checked():
    from worker.config import ConfigurationError, Settings

    settings = Settings.from_env({"KYC_HINT_STRETCH_FACTOR": "3", "KYC_HINT_SHARE": "0.9"})
    assert settings.safety_net.factor == 3.0 and settings.safety_net.share == 0.9
    assert Settings.from_env({}).safety_net.enabled
    for bad in (
        {"KYC_HINT_STRETCH_FACTOR": "0.5"},
        {"KYC_HINT_SHARE": "2"},
        {"KYC_HINT_WINDOW": "5", "KYC_HINT_MIN_TRANSITIONS": "6"},
    ):
        with pytest.raises(ConfigurationError, match="KYC_HINT_"):
            Settings.from_env(bad)
