"""The engine's rules against the real SQL store on SQLite and PostgreSQL, one poll at a time.

`Poller` below is a test-side view of the engine: it polls one verification
through `PollEngine.poll_batch` and reads back what happened, so each rule reads
as one call. Batches, the governor and the transport are tested elsewhere.
"""

import random
import threading
from dataclasses import dataclass
from datetime import datetime

import pytest
from sqlalchemy import select

from models import OutboxEvent, Transition, Verification, utcnow
from tests.doubles import NO_TRANSPORT, FakeClock, ScriptedAdapter, result, run_coroutine
from worker.adapters.sql_store import SqlStore, insert_verification_if_absent
from worker.domain.backoff import BackoffSettings
from worker.domain.decisions import Outcome, PollPolicy
from worker.domain.errors import PermanentProviderError, TransientProviderError
from worker.domain.results import PollResult
from worker.services.polling import PollEngine

# The legacy full-jitter backoff: these rules pin its ranges (the status-aware schedule
# is unit-tested in tests/unit/test_schedule.py and test_decisions.py).
SETTINGS = PollPolicy(
    schedule=None,
    poll_backoff=BackoffSettings(base=5.0, cap=300.0, floor=1.0),
    error_backoff=BackoffSettings(base=10.0, cap=600.0, floor=2.0),
    max_age_seconds=3600.0,
    max_permanent_errors=3,
)


@dataclass(frozen=True)
class PollOutcome:
    action: str
    status: str | None = None
    next_poll_at: datetime | None = None
    event_id: str | None = None
    error_code: str | None = None


class Poller:
    """One verification at a time through the engine (see the module docstring)."""

    def __init__(self, db, adapters, policy, *, clock=utcnow, rng=None) -> None:
        self.db = db
        self.engine = PollEngine(
            SqlStore(db),
            adapters,
            transport=NO_TRANSPORT,
            policy=policy,
            runner=run_coroutine,
            clock=clock,
            rng=rng or random.Random(),
        )

    def poll(self, verification_id: int) -> PollOutcome:
        report = self.engine.poll_batch([verification_id])
        with self.db.session() as session:
            row = session.get(Verification, verification_id)
        if report.conflicts:
            return PollOutcome("conflict")
        if report.skipped:
            return PollOutcome("missing" if row is None else "already_terminal", row and row.status)
        (action,) = report.outcomes
        event_id = report.event_ids[0] if report.event_ids else None
        error_code = row.last_error_code
        if action == Outcome.TRANSITION:
            with self.db.session() as session:
                error_code = session.scalar(
                    select(Transition.error_code)
                    .where(Transition.verification_id == verification_id)
                    .order_by(Transition.id.desc())
                    .limit(1)
                )
        return PollOutcome(str(action), row.status, row.next_poll_at, event_id, error_code)


def add_verification(db, clock, provider="notus", external_id="sess-1", vtype=None) -> int:
    with db.session() as session, session.begin():
        verification_id, created = insert_verification_if_absent(
            session,
            provider=provider,
            external_id=external_id,
            verification_type=vtype,
            now=clock(),
        )
    assert created
    return verification_id


def make_poller(db, adapter, clock, settings=SETTINGS):
    return Poller(db, {adapter.name: adapter}, settings, clock=clock, rng=random.Random(7))


def load(db, verification_id):
    with db.session() as session:
        row = session.get(Verification, verification_id)
        transitions = session.scalars(
            select(Transition)
            .where(Transition.verification_id == verification_id)
            .order_by(Transition.id)
        ).all()
        events = session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.verification_id == verification_id)
            .order_by(OutboxEvent.id)
        ).all()
        return row, transitions, events


def test_each_status_change_writes_one_transition_and_one_event(db):
    clock = FakeClock()
    vid = add_verification(db, clock)
    adapter = ScriptedAdapter(
        "notus", [result("pending"), result("in_review"), result("in_review"), result("approved")]
    )
    poller = make_poller(db, adapter, clock)

    actions = []
    for _ in range(4):
        clock.advance(10)
        actions.append(poller.poll(vid).action)
    assert actions == ["unchanged", "transition", "unchanged", "transition"]

    row, transitions, events = load(db, vid)
    assert row.status == "approved"
    assert row.next_poll_at is None
    assert row.finished_at == clock.now
    assert [(t.from_status, t.to_status) for t in transitions] == [
        ("pending", "in_review"),
        ("in_review", "approved"),
    ]
    assert [(e.payload["from_status"], e.payload["to_status"]) for e in events] == [
        ("pending", "in_review"),
        ("in_review", "approved"),
    ]
    assert [e.payload["verification_version"] for e in events] == [t.version for t in transitions]
    assert events[-1].payload["terminal"] is True
    assert all(e.published_at is None for e in events)

    # terminal: no more provider calls
    assert poller.poll(vid).action == "already_terminal"
    assert adapter.calls == 4


def test_quiet_sessions_back_off_and_a_change_resets_the_backoff(db):
    clock = FakeClock()
    vid = add_verification(db, clock)
    adapter = ScriptedAdapter("notus", [result("pending")] * 6 + [result("in_progress")])
    poller = make_poller(db, adapter, clock)
    delays = []
    for _ in range(7):
        outcome = poller.poll(vid)
        delays.append((outcome.next_poll_at - clock.now).total_seconds())
        clock.now = outcome.next_poll_at
    row, _, _ = load(db, vid)
    # each unchanged poll n draws from [floor, min(cap, 5 * 2**n)]
    for attempt, delay in enumerate(delays[:6], start=1):
        assert 1.0 <= delay <= min(300.0, 5.0 * 2**attempt)
    assert row.status == "in_progress"
    assert row.poll_attempts == 0  # reset by the change
    assert 1.0 <= delays[6] <= 5.0
    assert row.total_polls == 7


def test_transient_errors_back_off_separately_and_keep_the_status(db):
    clock = FakeClock()
    vid = add_verification(db, clock)
    adapter = ScriptedAdapter(
        "notus",
        [
            TransientProviderError("server_error", "HTTP 503 from notus", http_status=503),
            TransientProviderError("rate_limited", "HTTP 429", http_status=429, retry_after=45),
            result("in_review"),
        ],
    )
    poller = make_poller(db, adapter, clock)
    first = poller.poll(vid)
    assert first.action == "error" and first.error_code == "server_error"
    assert 2.0 <= (first.next_poll_at - clock.now).total_seconds() <= 10.0
    second = poller.poll(vid)
    assert second.error_code == "rate_limited"
    assert (second.next_poll_at - clock.now).total_seconds() >= 45
    row, transitions, events = load(db, vid)
    assert (row.status, row.error_count, row.last_error_code) == ("pending", 2, "rate_limited")
    assert transitions == [] and events == []

    assert poller.poll(vid).action == "transition"
    row, _, _ = load(db, vid)
    assert (row.error_count, row.last_error, row.last_error_code) == (0, None, None)


def test_permanent_errors_end_in_failed_after_the_configured_count(db):
    clock = FakeClock()
    vid = add_verification(db, clock)
    not_found = PermanentProviderError("not_found", "HTTP 404 from notus", http_status=404)
    adapter = ScriptedAdapter("notus", [not_found])
    poller = make_poller(db, adapter, clock)
    assert [poller.poll(vid).action for _ in range(3)] == ["error", "error", "transition"]
    row, transitions, events = load(db, vid)
    assert row.status == "failed" and row.next_poll_at is None
    assert row.last_error_code == "not_found"
    assert transitions[-1].reason == "provider_error"
    assert events[-1].payload["to_status"] == "failed"
    assert events[-1].payload["error_code"] == "not_found"
    assert events[-1].payload["reason"] == "provider_error"


def test_a_good_answer_resets_the_permanent_error_count(db):
    clock = FakeClock()
    vid = add_verification(db, clock)
    auth = PermanentProviderError("auth_failed", "HTTP 401 from notus", http_status=401)
    adapter = ScriptedAdapter("notus", [auth, auth, result("pending"), auth, auth, auth])
    poller = make_poller(db, adapter, clock)
    actions = [poller.poll(vid).action for _ in range(6)]
    assert actions == ["error", "error", "unchanged", "error", "error", "transition"]


def test_unknown_provider_status_keeps_polling_and_stores_the_word(db):
    clock = FakeClock()
    vid = add_verification(db, clock)
    adapter = ScriptedAdapter(
        "notus",
        [TransientProviderError("unknown_status", "unknown notus status", provider_status="WEIRD")]
        * 10,
    )
    poller = make_poller(db, adapter, clock)
    for _ in range(10):
        assert poller.poll(vid).action == "error"
    row, transitions, _ = load(db, vid)
    assert (row.status, row.provider_status, row.last_error_code) == (
        "pending",
        "WEIRD",
        "unknown_status",
    )
    assert row.next_poll_at is not None and transitions == []


def test_verification_older_than_max_age_times_out_without_asking_the_provider(db):
    clock = FakeClock()
    vid = add_verification(db, clock)
    adapter = ScriptedAdapter("notus", [result("pending")])
    poller = make_poller(db, adapter, clock)
    poller.poll(vid)
    clock.advance(SETTINGS.max_age_seconds)
    outcome = poller.poll(vid)
    assert outcome.action == "transition" and outcome.status == "timed_out"
    assert adapter.calls == 1
    row, transitions, events = load(db, vid)
    assert row.status == "timed_out" and row.next_poll_at is None
    assert transitions[-1].reason == "timed_out"
    assert events[-1].payload["reason"] == "timed_out"
    assert events[-1].payload["terminal"] is True


def test_events_carry_no_personal_data(db):
    clock = FakeClock()
    vid = add_verification(db, clock)
    personal = {
        "firstName": "Alice",
        "lastName": "Liddell",
        "birthDate": "1852-05-04",
        "document": {"id": "PASSPORT-991"},
    }
    adapter = ScriptedAdapter(
        "notus",
        [result("approved", "APPROVED", payload={"session": {"status": "APPROVED", **personal}})],
    )
    make_poller(db, adapter, clock).poll(vid)
    row, _, events = load(db, vid)
    assert row.result["response"]["session"]["firstName"] == "Alice"  # kept in the database
    text = repr(events[0].payload)
    for value in ("Alice", "Liddell", "1852-05-04", "PASSPORT-991"):
        assert value not in text
    assert set(events[0].payload) == {
        "event_id",
        "event_type",
        "schema_version",
        "verification_id",
        "verification_version",
        "provider",
        "external_id",
        "verification_type",
        "from_status",
        "to_status",
        "terminal",
        "provider_status",
        "reason",
        "error_code",
        "related_external_id",
        "occurred_at",
        "summary",
    }
    assert events[0].payload["summary"] == {}  # the scripted answer has no summary


def test_a_pointer_to_an_earlier_check_starts_tracking_it(db):
    clock = FakeClock()
    vid = add_verification(db, clock, provider="bank131", external_id="12")
    adapter = ScriptedAdapter(
        "bank131",
        [
            result(
                "cancelled",
                "error:already_exists",
                error_code="already_exists",
                related_external_id="7",
            )
        ],
    )
    make_poller(db, adapter, clock).poll(vid)
    with db.session() as session:
        rows = {r.external_id: r for r in session.scalars(select(Verification))}
    assert rows["12"].status == "cancelled"
    assert rows["7"].status == "pending" and rows["7"].next_poll_at == clock.now
    _, _, events = load(db, vid)
    assert events[0].payload["related_external_id"] == "7"


def test_a_hostile_pointer_is_not_tracked(db):
    clock = FakeClock()
    vid = add_verification(db, clock, provider="bank131", external_id="12")
    adapter = ScriptedAdapter(
        "bank131",
        [
            result(
                "cancelled",
                "error:already_exists",
                error_code="already_exists",
                related_external_id="../../admin",
            )
        ],
    )
    assert make_poller(db, adapter, clock).poll(vid).action == "transition"
    with db.session() as session:
        assert [r.external_id for r in session.scalars(select(Verification))] == ["12"]


def test_a_provider_without_configuration_is_an_error_not_a_loss(db):
    clock = FakeClock()
    vid = add_verification(db, clock, provider="gu1")
    poller = Poller(db, {}, SETTINGS, clock=clock, rng=random.Random(1))
    outcome = poller.poll(vid)
    assert outcome.action == "error" and outcome.error_code == "provider_not_configured"
    row, _, _ = load(db, vid)
    assert row.status == "pending" and row.next_poll_at > clock.now


def test_polling_an_unknown_id_does_nothing(db):
    poller = Poller(db, {}, SETTINGS)
    assert poller.poll(424242).action == "missing"


class BarrierAdapter(ScriptedAdapter):
    """Holds every caller after its provider call until all parties have called."""

    def __init__(self, name, steps, parties):
        super().__init__(name, steps)
        self.barrier = threading.Barrier(parties, timeout=10)

    async def fetch_status(self, transport, external_id, verification_type) -> PollResult:
        answer = await super().fetch_status(transport, external_id, verification_type)
        self.barrier.wait()  # each poll runs its own event loop in its own thread
        return answer


@pytest.mark.parametrize("parties", [2, 4])
def test_concurrent_polls_of_one_verification_give_exactly_one_transition(db, parties):
    clock = FakeClock()
    vid = add_verification(db, clock)
    adapter = BarrierAdapter("notus", [result("approved")], parties)
    poller = make_poller(db, adapter, clock)
    outcomes = []
    threads = [
        threading.Thread(target=lambda: outcomes.append(poller.poll(vid))) for _ in range(parties)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(o.action for o in outcomes) == sorted(
        ["transition"] + ["conflict"] * (parties - 1)
    )
    row, transitions, events = load(db, vid)
    assert row.status == "approved"
    assert len(transitions) == 1 and len(events) == 1


def test_an_error_or_deferral_keeps_the_last_answer_and_poll_time(db):
    clock = FakeClock()
    vid = add_verification(db, clock)
    adapter = ScriptedAdapter(
        "notus",
        [
            result("pending", payload={"session": {"status": "PENDING"}}),
            TransientProviderError("server_error", "HTTP 503 from notus", http_status=503),
        ],
    )
    poller = make_poller(db, adapter, clock)
    poller.poll(vid)
    polled_at = clock.now
    clock.advance(30)
    assert poller.poll(vid).action == "error"
    row, _, _ = load(db, vid)
    assert row.result["response"] == {"session": {"status": "PENDING"}}
    assert row.last_polled_at == clock.now  # the failed poll was a poll
    assert polled_at < row.last_polled_at
