"""Every documented (or guessed) status word of every provider maps to the right status.

The documented words are the fakes' vocabularies (devkit/fake_providers/*.py,
written from the documents); their meanings are written here from the same
documents, independently of the adapters' tables.
"""

from __future__ import annotations

import pytest

from devkit.fake_providers import gu1 as gu1_fake
from devkit.fake_providers import notus as notus_fake
from devkit.fake_providers import predicate as predicate_fake
from worker.adapters import bank131, gu1, notus, predicate
from worker.domain.statuses import VerificationStatus as S

# What each documented word means, written from the documents (not from the tables):
# the fakes speak these words, so a table that misreads one fails here.
DOCUMENTED = {
    # Notus: public clients written from docs.notus.team (guides/kyc-quickstart)
    ("notus", "PENDING"): S.PENDING,
    ("notus", "VERIFYING"): S.IN_REVIEW,
    ("notus", "COMPLETED"): S.APPROVED,
    ("notus", "FAILED"): S.REJECTED,
    ("notus", "EXPIRED"): S.EXPIRED,
    # Bank131: bank131.txt (pending -> in_progress is the adapter's GUESS, below)
    ("bank131", "ok"): S.APPROVED,
    ("bank131", "error:passport_validation_failure"): S.REJECTED,
    ("bank131", "error:inn_validation_failure"): S.REJECTED,
    ("bank131", "error:already_exists"): S.CANCELLED,
    # gu1: gu1.txt, Status Values
    ("gu1", "pending"): S.PENDING,
    ("gu1", "in_progress"): S.IN_PROGRESS,
    ("gu1", "in_review"): S.IN_REVIEW,
    ("gu1", "approved"): S.APPROVED,
    ("gu1", "rejected"): S.REJECTED,
    ("gu1", "expired"): S.EXPIRED,
    ("gu1", "abandoned"): S.ABANDONED,
    ("gu1", "cancelled"): S.CANCELLED,
    # Predicate: predicate.txt, Status Values
    ("predicate", "pending"): S.PENDING,
    ("predicate", "submitted"): S.IN_REVIEW,
    ("predicate", "completed"): S.APPROVED,
    ("predicate", "rejected"): S.REJECTED,
    ("predicate", "retry"): S.RETRY,
}
GUESSED = {
    ("notus", "IN_PROGRESS"): S.IN_PROGRESS,
    ("notus", "IN_REVIEW"): S.IN_REVIEW,
    ("notus", "RESUBMISSION_REQUESTED"): S.RETRY,
    ("notus", "APPROVED"): S.APPROVED,
    ("notus", "REJECTED"): S.REJECTED,
    ("notus", "DECLINED"): S.REJECTED,
    ("notus", "ABANDONED"): S.ABANDONED,
    ("notus", "CANCELLED"): S.CANCELLED,
    ("notus", "CANCELED"): S.CANCELLED,
    ("bank131", "pending"): S.IN_PROGRESS,
    # Predicate's older revision: in_progress as named, failed where `rejected` is now.
    ("predicate", "in_progress"): S.IN_PROGRESS,
    ("predicate", "failed"): S.REJECTED,
}
FAKE_VOCABULARIES = {
    "notus": notus_fake.DOCUMENTED_STATUSES,
    "gu1": gu1_fake.DOCUMENTED_STATUSES,
    "predicate": predicate_fake.DOCUMENTED_STATUSES,
}
CASES = [
    *((provider, word, status) for (provider, word), status in DOCUMENTED.items()),
    *((provider, word, status) for (provider, word), status in GUESSED.items()),
    # every table is case-insensitive
    ("notus", "completed", S.APPROVED),
    ("notus", "Verifying", S.IN_REVIEW),
    ("gu1", "APPROVED", S.APPROVED),
    ("predicate", "Submitted", S.IN_REVIEW),
    ("predicate", "FAILED", S.REJECTED),
    ("bank131", "OK", S.APPROVED),
]
TABLES = {
    "notus": notus.STATUS_TABLE,
    "bank131": bank131.STATUS_TABLE,
    "gu1": gu1.STATUS_TABLE,
    "predicate": predicate.STATUS_TABLE,
}


@pytest.mark.parametrize("provider", list(FAKE_VOCABULARIES))
def test_the_fakes_speak_exactly_the_documented_words(provider):
    assert set(FAKE_VOCABULARIES[provider]) == {w for p, w in DOCUMENTED if p == provider}


@pytest.mark.parametrize(("provider", "word"), [*DOCUMENTED, *GUESSED])
def test_every_row_names_its_source_and_guesses_say_why(provider, word):
    table = TABLES[provider]
    source = table.source(word)
    assert source is not None
    if (provider, word) in DOCUMENTED:
        assert not source.startswith("GUESS"), source
        assert ".txt" in source or "docs." in source, source
    else:
        assert source.startswith("GUESS: ") and len(source) > len("GUESS: ") + 20, source


@pytest.mark.parametrize("provider", list(TABLES))
def test_the_tables_hold_no_row_these_tests_do_not_know(provider):
    # A new row comes with its expected meaning here (documented or guessed).
    rows = {word for word, row in TABLES[provider].rows.items() if not _is_failure(row.outcome)}
    expected = {TABLES[provider].fold(w) for p, w in [*DOCUMENTED, *GUESSED] if p == provider}
    assert rows == expected


def _is_failure(outcome: object) -> bool:
    return isinstance(outcome, bank131.Failure)


@pytest.mark.parametrize(("provider", "word", "expected"), CASES)
def test_status_word_maps_to_normalized_status(
    fake_providers, new_session_id, make_adapter, provider, word, expected
):
    session_id = new_session_id(provider)
    fake_providers.add_session(provider, session_id, [word])
    result = make_adapter(provider).fetch_status(session_id, None)
    assert result.status is expected
    assert result.provider_status == (word.lower() if provider == "bank131" else word)
    assert fake_providers.request_count(provider, session_id) == 1


@pytest.mark.parametrize(
    ("provider", "script", "expected"),
    [
        ("notus", ["PENDING", "VERIFYING", "COMPLETED"], [S.PENDING, S.IN_REVIEW, S.APPROVED]),
        ("bank131", ["pending", "ok"], [S.IN_PROGRESS, S.APPROVED, S.APPROVED]),
        ("gu1", ["pending", "in_progress", "rejected"], [S.PENDING, S.IN_PROGRESS, S.REJECTED]),
        ("predicate", ["retry", "submitted"], [S.RETRY, S.IN_REVIEW, S.IN_REVIEW]),
    ],
)
def test_successive_polls_follow_the_script_and_the_last_step_repeats(
    fake_providers, new_session_id, make_adapter, provider, script, expected
):
    session_id = new_session_id(provider)
    fake_providers.add_session(provider, session_id, script)
    adapter = make_adapter(provider)
    seen = [adapter.fetch_status(session_id, None).status for _ in expected]
    assert seen == expected
