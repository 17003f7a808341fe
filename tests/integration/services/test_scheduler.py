"""Claiming due rows per provider, and the sweep that cuts them into batches (both databases)."""

import threading
from datetime import timedelta

import fakeredis
from sqlalchemy import update

from models import Verification
from tests.doubles import FakeClock
from worker.adapters.sql_store import SqlStore, insert_verification_if_absent
from worker.services.governor import BreakerSettings, ProviderGovernor, RateLimit
from worker.services.scheduling import Sweeper


def claim_due_verifications(db, *, now, limit, lease_seconds, provider="notus"):
    return SqlStore(db).claim_due(provider, now=now, limit=limit, lease_seconds=lease_seconds)


def add_many(db, clock, count, due_in=0.0, provider="notus"):
    ids = []
    with db.session() as session, session.begin():
        for n in range(count):
            vid, _ = insert_verification_if_absent(
                session,
                provider=provider,
                external_id=f"s-{n}-{due_in}",
                verification_type=None,
                now=clock() + timedelta(seconds=due_in),
            )
            ids.append(vid)
    return ids


def test_claims_only_due_rows_oldest_first_and_leases_them(db):
    clock = FakeClock()
    due = add_many(db, clock, 3)
    add_many(db, clock, 2, due_in=60)
    with db.session() as session, session.begin():
        session.execute(
            update(Verification)
            .where(Verification.id == due[0])
            .values(next_poll_at=clock.now - timedelta(seconds=30))
        )
        # terminal rows have no next poll
        session.execute(
            update(Verification)
            .where(Verification.id == due[2])
            .values(next_poll_at=None, status="approved")
        )

    assert claim_due_verifications(db, now=clock.now, limit=1, lease_seconds=120) == [due[0]]
    claimed = claim_due_verifications(db, now=clock.now, limit=10, lease_seconds=120)
    assert claimed == [due[1]]
    # leased: not due again until the lease runs out
    assert claim_due_verifications(db, now=clock.now, limit=10, lease_seconds=120) == []
    later = clock.now + timedelta(seconds=121)
    assert set(claim_due_verifications(db, now=later, limit=10, lease_seconds=120)) >= {
        due[0],
        due[1],
    }


def test_claims_are_per_provider(db):
    clock = FakeClock()
    notus = add_many(db, clock, 3)
    gu1 = add_many(db, clock, 2, provider="gu1")
    assert set(claim_due_verifications(db, now=clock.now, limit=10, lease_seconds=60)) == set(notus)
    got = claim_due_verifications(db, now=clock.now, limit=10, lease_seconds=60, provider="gu1")
    assert set(got) == set(gu1)


def sweeper(db, governor=None, **kwargs):
    options = {"batch_size": 4, "max_claims": 1000, "lease_seconds": 60, "interval_seconds": 2}
    return Sweeper(SqlStore(db), ("notus", "gu1"), governor=governor, **{**options, **kwargs})


def test_a_sweep_cuts_each_providers_claims_into_batches(db):
    clock = FakeClock()
    notus = add_many(db, clock, 10)
    gu1 = add_many(db, clock, 3, provider="gu1")
    sweeps = {s.provider: s for s in sweeper(db).sweep(clock.now)}
    assert [len(b) for b in sweeps["notus"].batches] == [4, 4, 2]
    assert {v for b in sweeps["notus"].batches for v in b} == set(notus)
    assert {v for b in sweeps["gu1"].batches for v in b} == set(gu1)
    assert sweeper(db).sweep(clock.now) == []


def test_a_sweep_stops_at_its_ceiling(db):
    clock = FakeClock()
    add_many(db, clock, 10)
    add_many(db, clock, 10, provider="gu1")
    sweeps = sweeper(db, max_claims=12).sweep(clock.now)
    assert sum(s.claimed for s in sweeps) == 12


def test_a_sweep_shares_its_ceiling_fairly_between_providers(db):
    clock = FakeClock()
    add_many(db, clock, 40)  # notus, first in the sweep's order, with a large backlog
    add_many(db, clock, 40, provider="gu1")
    shares = {s.provider: s.claimed for s in sweeper(db, max_claims=20).sweep(clock.now)}
    assert shares == {"notus": 10, "gu1": 10}


def test_what_one_provider_leaves_of_its_share_goes_to_the_others(db):
    clock = FakeClock()
    add_many(db, clock, 40)
    add_many(db, clock, 3, provider="gu1")
    shares = {s.provider: s.claimed for s in sweeper(db, max_claims=20).sweep(clock.now)}
    assert shares == {"notus": 17, "gu1": 3}


def test_a_sweep_skips_an_open_circuit_and_follows_the_rate(db):
    clock = FakeClock()
    add_many(db, clock, 50)
    add_many(db, clock, 5, provider="gu1")
    governor = ProviderGovernor(
        fakeredis.FakeRedis(),
        BreakerSettings(min_faults=1),
        {"notus": RateLimit(per_second=5, burst=10)},
        clock=lambda: clock().timestamp(),
    )
    governor.record("gu1", successes=0, faults=3)
    sweeps = {s.provider: s for s in sweeper(db, governor).sweep(clock.now)}
    assert "gu1" not in sweeps  # its rows stay due for when it closes
    assert sweeps["notus"].claimed == 5 * 2 + 10


def test_batch_limit_is_respected(db):
    clock = FakeClock()
    add_many(db, clock, 7)
    first = claim_due_verifications(db, now=clock.now, limit=5, lease_seconds=60)
    second = claim_due_verifications(db, now=clock.now, limit=5, lease_seconds=60)
    assert len(first) == 5 and len(second) == 2
    assert not set(first) & set(second)


def test_concurrent_schedulers_never_claim_the_same_row(db):
    clock = FakeClock()
    ids = add_many(db, clock, 200)
    claims: list[list[int]] = []
    lock = threading.Lock()

    def scheduler():
        for _ in range(20):
            got = claim_due_verifications(db, now=clock.now, limit=7, lease_seconds=300)
            with lock:
                claims.append(got)

    threads = [threading.Thread(target=scheduler) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    flat = [vid for claim in claims for vid in claim]
    assert len(flat) == len(set(flat))
    assert set(flat) == set(ids)
