"""Predicate specifics: the type is part of the path; the summary keeps counts, not wallets."""

from __future__ import annotations

import json

import pytest

from devkit.fake_providers import predicate as fake
from worker.domain.errors import PermanentProviderError
from worker.domain.statuses import VerificationStatus


def test_business_sessions_are_polled_under_the_business_path(
    fake_providers, new_session_id, make_adapter
):
    session_id = new_session_id("predicate")
    fake_providers.add_session("predicate", session_id, ["submitted"], "business")
    adapter = make_adapter("predicate")
    assert adapter.fetch_status(session_id, "business").status is VerificationStatus.IN_REVIEW
    # The same session is not an individual one: the fake answers 404 under that path.
    with pytest.raises(PermanentProviderError) as info:
        adapter.fetch_status(session_id, "individual")
    assert info.value.code == "not_found"


def test_no_type_means_individual(fake_providers, new_session_id, make_adapter):
    session_id = new_session_id("predicate")
    fake_providers.add_session("predicate", session_id, ["pending"])
    adapter = make_adapter("predicate")
    assert adapter.fetch_status(session_id, None).status is VerificationStatus.PENDING
    assert adapter.fetch_status(session_id, "individual").status is VerificationStatus.PENDING
    with pytest.raises(PermanentProviderError):
        adapter.fetch_status(session_id, "business")


def test_completed_summary_counts_wallets_without_addresses_or_user(
    fake_providers, new_session_id, make_adapter
):
    session_id = new_session_id("predicate")
    fake_providers.add_session("predicate", session_id, ["completed"])
    result = make_adapter("predicate").fetch_status(session_id, None)
    assert result.status is VerificationStatus.APPROVED
    assert result.summary["verified_wallets"] == 2
    assert result.summary["unverified_wallets"] == 0
    assert result.summary["completed_at"] == result.payload["completedAt"]
    assert set(result.summary) == {"verified_wallets", "unverified_wallets", "completed_at"}
    stored, summary = json.dumps(result.payload), json.dumps(result.summary)
    for value in fake.PERSONAL_VALUES:
        assert value in stored
        assert value not in summary


def test_pending_summary_has_no_completion_time(fake_providers, new_session_id, make_adapter):
    session_id = new_session_id("predicate")
    fake_providers.add_session("predicate", session_id, ["pending"])
    result = make_adapter("predicate").fetch_status(session_id, None)
    assert result.summary == {"verified_wallets": 0, "unverified_wallets": 1}
