import threading
from datetime import timedelta

from sqlalchemy import update

from models import Verification
from tests.integration.core.doubles import FakeClock
from worker.services.scheduling import claim_due_verifications
from worker.services.tracking import insert_verification_if_absent


def add_many(db, clock, count, due_in=0.0):
    ids = []
    with db.session() as session, session.begin():
        for n in range(count):
            vid, _ = insert_verification_if_absent(
                session,
                provider="notus",
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

    claimed = claim_due_verifications(db, now=clock.now, limit=10, lease_seconds=120)
    assert claimed == [due[0], due[1]]
    # leased: not due again until the lease runs out
    assert claim_due_verifications(db, now=clock.now, limit=10, lease_seconds=120) == []
    later = clock.now + timedelta(seconds=121)
    assert set(claim_due_verifications(db, now=later, limit=10, lease_seconds=120)) >= {
        due[0],
        due[1],
    }


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
