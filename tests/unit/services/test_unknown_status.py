"""Unknown status words: recorded raw, polled at a slow pace, counted and logged once, bounded."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from tests.doubles import NO_TRANSPORT, FakeClock, ScriptedAdapter, result, run_coroutine
from worker.adapters.http import unknown_status
from worker.adapters.memory_store import MemoryStore
from worker.config import Settings
from worker.domain.decisions import Outcome, PollPolicy, StoredVerification, decide
from worker.domain.errors import ConfigurationError, ErrorCode
from worker.domain.statuses import VerificationStatus as S
from worker.domain.unknown_words import LABEL_CHARS, OTHER_LABEL, UnknownWords, word_label
from worker.services.polling import PollEngine

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
POLICY = PollPolicy(max_permanent_errors=2, unknown_status_poll_seconds=600.0)


def row(**changes) -> StoredVerification:
    base = StoredVerification(
        id=7,
        provider="notus",
        external_id="sess-1",
        verification_type=None,
        status=S.PENDING,
        provider_status="PENDING",
        version=3,
        created_at=NOW - timedelta(minutes=5),
    )
    return StoredVerification(**{**base.__dict__, **changes})


def test_an_unknown_word_is_recorded_raw_and_polled_again_at_its_own_pace():
    error = unknown_status("notus", "ON_HOLD")
    for errors in (0, 1, 9):  # the pace does not grow like an error backoff
        decision = decide(row(error_count=errors), error, NOW, POLICY, random.Random(errors))
        assert decision.outcome is Outcome.ERROR
        assert decision.update.provider_status == "ON_HOLD"
        assert decision.update.last_error_code is ErrorCode.UNKNOWN_STATUS
        wait = (decision.update.next_poll_at - NOW).total_seconds()
        assert 540.0 <= wait <= 660.0


def test_unknown_words_never_fail_a_verification():
    error = unknown_status("notus", "ON_HOLD")
    stored = row(permanent_error_count=1)
    for _ in range(10):
        decision = decide(stored, error, NOW, POLICY, random.Random(1))
        assert decision.update.status is S.PENDING
        assert decision.update.permanent_error_count == 1
        stored = row(error_count=decision.update.error_count, permanent_error_count=1)


def test_a_hostile_word_is_stored_cleaned_and_bounded():
    error = unknown_status("notus", "BAD\x00" + "x" * 500)
    decision = decide(row(), error, NOW, POLICY, random.Random(1))
    assert decision.update.provider_status is not None
    assert "\x00" not in decision.update.provider_status
    assert len(decision.update.provider_status) <= 128


def test_the_pace_is_a_setting_above_zero():
    assert Settings.from_env({}).policy.unknown_status_poll_seconds == 600.0
    env = {"KYC_UNKNOWN_STATUS_POLL_SECONDS": "120"}
    assert Settings.from_env(env).policy.unknown_status_poll_seconds == 120.0
    with pytest.raises(ConfigurationError, match="KYC_UNKNOWN_STATUS_POLL_SECONDS"):
        Settings.from_env({"KYC_UNKNOWN_STATUS_POLL_SECONDS": "0"})


@pytest.mark.parametrize(
    ("word", "label"),
    [
        ("VERIFYING", "VERIFYING"),
        ("in review", "in_review"),
        ("error:doc_expired", "error:doc_expired"),
        ("", "_empty"),
        ("  ", "_empty"),
        ("ünï{code}", "_n__code_"),
        ("x" * 100, "x" * LABEL_CHARS),
    ],
)
def test_labels_are_short_and_safe(word, label):
    assert word_label(word) == label


def test_the_words_remembered_per_provider_are_capped():
    words = UnknownWords(max_words=2)
    assert words.seen("gu1", "a").first and words.seen("gu1", "b").first
    assert not words.seen("gu1", "a").first
    third = words.seen("gu1", "c")
    assert (third.label, third.first, third.capped_now) == (OTHER_LABEL, False, True)
    assert not words.seen("gu1", "d").capped_now
    assert words.seen("notus", "a").first  # per provider
    assert words.words("gu1") == {"a", "b"}


class Recorder:
    def __init__(self) -> None:
        self.unknown: list[tuple[str, str]] = []

    def call_finished(self, provider, seconds, outcome):
        return None

    def decision_applied(self, decision):
        return None

    def polls_deferred(self, provider, limited_by, count):
        return None

    def circuit_changed(self, provider, state):
        return None

    def unknown_status(self, provider, word_label):
        self.unknown.append((provider, word_label))


def test_the_engine_counts_every_sighting_and_logs_each_word_once_per_process():
    clock = FakeClock()
    store = MemoryStore()
    ids = [store.add("gu1", f"val-{i}", now=clock()) for i in range(3)]
    adapter = ScriptedAdapter("gu1", [unknown_status("gu1", "on_hold")])
    recorder = Recorder()
    engine = PollEngine(
        store,
        {"gu1": adapter},
        NO_TRANSPORT,
        POLICY,
        runner=run_coroutine,
        clock=clock,
        rng=random.Random(1),
        observer=recorder,
    )
    with capture_logs() as logs:
        engine.poll_batch(ids)
        clock.advance(700)
        engine.poll_batch(ids)
    assert recorder.unknown == [("gu1", "on_hold")] * 6
    warnings = [entry for entry in logs if entry["event"] == "unknown_provider_status"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["provider_status"] == "on_hold"
    assert warnings[0]["map_with"] == "KYC_GU1_STATUS_MAP_EXTRA"
    assert {r.stored.provider_status for r in store.rows.values()} == {"on_hold"}
    assert {r.last_error_code for r in store.rows.values()} == {ErrorCode.UNKNOWN_STATUS}


def test_an_observer_without_the_optional_hook_still_works():
    clock = FakeClock()
    store = MemoryStore()
    vid = store.add("gu1", "val-x", now=clock())

    class Minimal:
        def call_finished(self, provider, seconds, outcome):
            return None

        def decision_applied(self, decision):
            return None

        def polls_deferred(self, provider, limited_by, count):
            return None

        def circuit_changed(self, provider, state):
            return None

    engine = PollEngine(
        store,
        {"gu1": ScriptedAdapter("gu1", [unknown_status("gu1", "x"), result("pending")])},
        NO_TRANSPORT,
        POLICY,
        runner=run_coroutine,
        clock=clock,
        observer=Minimal(),
    )
    assert engine.poll_batch([vid]).outcomes[Outcome.ERROR] == 1
