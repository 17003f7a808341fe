"""Decision details for apps: each provider's non-personal results reach the event document.

Fixtures are the fakes' answers, shaped as the documents show: gu1.txt (decision
feature blocks with scores and warnings), bank131.txt (OK answer, "description"),
predicate.txt (Response (Completed), wallets), notus.txt plus the public clients
(COMPLETED with individualId, livenessRequired).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from devkit.fake_providers import bank131, gu1, notus, predicate
from worker.domain.cloudevents import to_cloudevent
from worker.domain.decisions import PollPolicy, StoredVerification, decide
from worker.domain.statuses import VerificationStatus as S

NOW = datetime.now(UTC)
PERSONAL = {
    "notus": notus.PERSONAL_VALUES,
    "bank131": bank131.PERSONAL_VALUES,
    "gu1": gu1.PERSONAL_VALUES,
    "predicate": predicate.PERSONAL_VALUES,
}
CASES = [
    (
        "notus",
        "COMPLETED",
        {"individual_id": notus.INDIVIDUAL_ID, "liveness_required": True},
    ),
    ("bank131", "ok", {"description": "valid"}),
    (
        "gu1",
        {"status": "rejected", "decision": "features"},
        {
            "document_authenticity": "fail",
            "face_match": "fail",
            "liveness": "pass",
            "aml": "match",
            "scores": {"face_match": "97.4", "liveness": "99.1"},
            "warnings": ["DOCUMENT_TAMPERED", "LOW_FACE_MATCH_SIMILARITY", "POSSIBLE_MATCH_FOUND"],
        },
    ),
    ("predicate", "completed", {"verified_wallets": 2, "unverified_wallets": 0}),
]


def floats_in(value: object) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(floats_in(item) for item in value.values())
    if isinstance(value, list):
        return any(floats_in(item) for item in value)
    return False


@pytest.mark.parametrize(("provider", "step", "expected"), CASES)
def test_the_event_carries_the_providers_results_without_personal_data_or_floats(
    fake_providers, new_session_id, make_adapter, provider, step, expected
):
    session_id = new_session_id(provider)
    fake_providers.add_session(provider, session_id, [step])
    answer = make_adapter(provider).fetch_status(session_id, None)
    row = StoredVerification(
        id=1,
        provider=provider,
        external_id=session_id,
        verification_type="individual" if provider == "predicate" else None,
        status=S.PENDING,
        provider_status=None,
        version=1,
        created_at=NOW - timedelta(minutes=1),
    )
    decision = decide(row, answer, NOW, PollPolicy(), random.Random(1))
    assert decision.event is not None
    summary = decision.event["summary"]
    assert {key: summary.get(key) for key in expected} == expected
    text = json.dumps(to_cloudevent(decision.event))
    assert not floats_in(json.loads(text))
    for value in PERSONAL[provider]:
        assert value not in text
