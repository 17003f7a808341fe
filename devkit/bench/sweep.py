"""Scheduler sweep cost against table size: does a claim cost follow the due rows, or the table?

For each database (a SQLite file, a throwaway PostgreSQL cluster started from
local binaries as the tests do: devkit.embedded_postgres) and each table size, it
bulk-inserts that many verifications (a few due now, the rest due in the future or
terminal with `next_poll_at` NULL), ANALYZEs, then times the sweep's claim (`claim()` below,
the one place that calls the product) in claims of --limit rows, and a claim
when nothing is due. Due rows claimed are put back between rounds, so every
round claims the same rows.

The claims run on one pooled connection, as a long-lived sweeper's do, so the
later rounds see what a steady state sees: on PostgreSQL psycopg prepares a
statement after 5 executions and the server may then switch to a generic plan.
"ms/claim" is the median of the second half of the claims (steady state); the
first round is shown apart.

Not a test: it prints figures and asserts nothing. Exit status non-zero only
when setup fails.

    .venv/bin/python scripts/bench_sweep.py                       # 10k, 100k, 1M on both
    .venv/bin/python scripts/bench_sweep.py --sizes 10k,100k --database sqlite
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, update

from devkit.embedded_postgres import BenchDatabases, PostgresUnavailable
from models import Verification
from models.db import Database
from worker.domain.statuses import VerificationStatus
from worker.entrypoints.migrate import upgrade
from worker.services.tracking import insert_verification_if_absent

PROVIDER = "notus"
LEASE_SECONDS = 120.0
INSERT_CHUNK = 20_000


def claim(db: Database, now: datetime, limit: int) -> list[int]:
    """The sweep's claim as the product makes it today: ids of up to `limit` due rows of one
    provider, leased. The only call into the code under test: change it here when the
    claim's signature changes."""
    from worker.adapters.sql_store import SqlStore

    return SqlStore(db).claim_due(PROVIDER, now=now, limit=limit, lease_seconds=LEASE_SECONDS)


class SetupError(RuntimeError):
    pass


def say(line: str = "") -> None:
    print(line, flush=True)


def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if scale > 1 else text
    return int(float(number) * scale)


# --------------------------------------------------------------------------- databases


# --------------------------------------------------------------------------- filling the table


def template_row(db: Database, now: datetime) -> tuple[list[str], list[Any]]:
    """A row exactly as the product stores a new verification (columns as migrated, values in
    the database's own representation), read back raw; the table is left empty."""
    with db.session() as session, session.begin():
        insert_verification_if_absent(
            session, provider=PROVIDER, external_id="template", verification_type=None, now=now
        )
    with db.engine.begin() as connection:
        result = connection.exec_driver_sql("SELECT * FROM verifications")
        names = list(result.keys())
        row = list(result.one())
        connection.exec_driver_sql("DELETE FROM verifications")
    keep = [i for i, name in enumerate(names) if name != "id"]
    values = [json.dumps(row[i]) if isinstance(row[i], dict | list) else row[i] for i in keep]
    return [names[i] for i in keep], values


def binder(db: Database, column: str) -> Callable[[Any], Any]:
    """Turns a value into what the product's column type binds on this database (e.g. SQLite's
    text timestamps), so raw inserts compare exactly like the product's own rows."""
    dialect = db.engine.dialect
    kind = Verification.__table__.c[column].type.dialect_impl(dialect)
    process = kind.bind_processor(dialect)
    return process if process is not None else (lambda value: value)


@dataclass(frozen=True)
class Layout:
    size: int
    due: int

    def rows(
        self, db: Database, names: list[str], template: list[Any], now: datetime
    ) -> Iterator[list[Any]]:
        """`due` rows due a minute ago (oldest first); of the rest, half due within the next day,
        half terminal (approved, next_poll_at NULL)."""
        at = {name: i for i, name in enumerate(names)}
        approved = binder(db, "status")(VerificationStatus.APPROVED)
        finished = binder(db, "finished_at")(now - timedelta(days=1))
        moment = binder(db, "next_poll_at")
        due_at = [moment(now - timedelta(seconds=60 + n)) for n in range(1000)]
        future = [moment(now + timedelta(seconds=60 + n)) for n in range(86_400)]
        for n in range(self.size):
            row = list(template)
            row[at["external_id"]] = f"sweep-{n}"
            if n < self.due:
                row[at["next_poll_at"]] = due_at[n % len(due_at)]
            elif n % 2:
                row[at["next_poll_at"]] = future[n % len(future)]
            else:
                row[at["next_poll_at"]] = None
                row[at["status"]] = approved
                row[at["finished_at"]] = finished
            yield row


def bulk_insert(db: Database, layout: Layout, now: datetime) -> float:
    """Insert the layout's rows the fastest way each database offers; returns seconds."""
    names, template = template_row(db, now)
    rows = layout.rows(db, names, template, now)
    started = time.perf_counter()
    raw = db.engine.raw_connection()
    try:
        if db.dialect == "postgresql":
            driver: Any = raw.driver_connection
            columns = ", ".join(names)
            with driver.cursor() as cursor:
                with cursor.copy(f"COPY verifications ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                cursor.execute("ANALYZE verifications")
            driver.commit()
        else:
            cursor = raw.cursor()
            statement = (
                f"INSERT INTO verifications ({', '.join(names)}) "
                f"VALUES ({', '.join('?' for _ in names)})"
            )
            cursor.execute("BEGIN")
            chunk: list[list[Any]] = []
            for row in rows:
                chunk.append(row)
                if len(chunk) == INSERT_CHUNK:
                    cursor.executemany(statement, chunk)
                    chunk = []
            if chunk:
                cursor.executemany(statement, chunk)
            cursor.execute("COMMIT")
            cursor.execute("ANALYZE")
            cursor.close()
    finally:
        raw.close()
    return time.perf_counter() - started


# --------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Figures:
    backend: str
    size: int
    insert_seconds: float
    claim_ms: float
    first_round_ms: float
    claim_p90_ms: float
    claimed: int
    empty_ms: float
    samples: int


def timed(call: Callable[[], list[int]]) -> tuple[float, int]:
    started = time.perf_counter()
    ids = call()
    return 1000 * (time.perf_counter() - started), len(ids)


def measure(
    backend: str, url: str, size: int, due: int, limit: int, rounds: int, empty_runs: int
) -> Figures:
    upgrade(url)
    db = Database(url)
    try:
        now = datetime.now(UTC)
        insert_seconds = bulk_insert(db, Layout(size, due), now)
        timed(lambda: claim(db, now - timedelta(days=365), limit))  # connect, warm caches
        put_back = (
            update(Verification)
            .where(Verification.id == bindparam("row_id"))
            .values(next_poll_at=bindparam("due_at"))
        )
        samples: list[float] = []
        first_round: list[float] = []
        claimed = 0
        for round_number in range(rounds):
            taken: list[int] = []
            while True:
                started = time.perf_counter()
                ids = claim(db, now, limit)
                elapsed = 1000 * (time.perf_counter() - started)
                if len(ids) == limit:  # a full claim; a partial last one is not comparable
                    samples.append(elapsed)
                    if round_number == 0:
                        first_round.append(elapsed)
                taken.extend(ids)
                if len(ids) < limit:
                    break
            claimed = len(taken)
            with db.session() as session, session.begin():
                session.connection().execute(
                    put_back,
                    [{"row_id": i, "due_at": now - timedelta(seconds=60)} for i in taken],
                )
        # Nothing due: the same claim a year earlier, when no row was due yet.
        empty = [
            timed(lambda: claim(db, now - timedelta(days=365), limit))[0] for _ in range(empty_runs)
        ]
    finally:
        db.dispose()
    ordered = sorted(samples) or [float("nan")]
    steady = samples[len(samples) // 2 :] or [float("nan")]
    return Figures(
        backend=backend,
        size=size,
        insert_seconds=insert_seconds,
        claim_ms=statistics.median(steady),
        first_round_ms=statistics.median(first_round or [float("nan")]),
        claim_p90_ms=ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))],
        claimed=claimed,
        empty_ms=statistics.median(empty),
        samples=len(samples),
    )


def human(size: int) -> str:
    if size >= 1_000_000 and size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    if size >= 1000 and size % 1000 == 0:
        return f"{size // 1000}k"
    return str(size)


def report(figures: Sequence[Figures], limit: int) -> None:
    say()
    say(f"=== sweep claim cost vs table size (claims of {limit}; medians) ===")
    say(
        f"{'database':<10}{'rows':>7}{'insert s':>10}{'rows/s ins':>12}"
        f"{f'ms/claim {limit}':>15}{'1st round':>11}{'p90 ms':>9}{'claimed rows/s':>16}"
        f"{'claims/s':>10}{'empty ms':>10}{'samples':>9}"
    )
    for f in figures:
        say(
            f"{f.backend:<10}{human(f.size):>7}{f.insert_seconds:>10.1f}"
            f"{f.size / f.insert_seconds:>12.0f}{f.claim_ms:>15.2f}{f.first_round_ms:>11.2f}"
            f"{f.claim_p90_ms:>9.2f}{limit * 1000 / f.claim_ms:>16.0f}{1000 / f.claim_ms:>10.1f}"
            f"{f.empty_ms:>10.2f}{f.samples:>9}"
        )
    say()
    say(
        f"ms/claim {limit}: median of the second half of the claims (steady state: statements "
        "prepared, plans cached); 1st round: the first claims on a fresh connection. p90 over "
        "all claims. empty ms: one claim when nothing is due. claimed rows/s: rows one claimer "
        "leases per second (limit / ms per claim), one provider, one connection."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10k,100k,1M", help="table sizes, e.g. 10k,100k,1M")
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--due", type=int, default=2000, help="rows due now in each table")
    parser.add_argument("--limit", type=int, default=500, help="rows per claim")
    parser.add_argument("--rounds", type=int, default=10, help="times the due rows are claimed")
    parser.add_argument("--empty-runs", type=int, default=20)
    parser.add_argument("--postgres-url", help="admin URL of a server to use instead of initdb")
    parser.add_argument(
        "--skip-enqueue", action="store_true", help="do not measure sending a sweep's batches"
    )
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    backends = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    workdir = Path(tempfile.mkdtemp(prefix="kyc-bench-sweep-"))
    databases = BenchDatabases(workdir, args.postgres_url, prefix="kyc_sweep")
    figures: list[Figures] = []
    try:
        if "postgres" in backends:
            try:
                databases.start_postgres()
            except PostgresUnavailable as exc:
                raise SetupError(f"{exc}; or use --database sqlite") from exc
        for backend in backends:
            for size in sizes:
                with databases.fresh(backend) as url:
                    result = measure(
                        backend,
                        url,
                        size,
                        min(args.due, size),
                        args.limit,
                        args.rounds,
                        args.empty_runs,
                    )
                figures.append(result)
                say(
                    f"{backend} {human(size)}: inserted in {result.insert_seconds:.1f} s; "
                    f"claim of {args.limit}: {result.claim_ms:.2f} ms median "
                    f"({result.samples} claims, {result.claimed} due); "
                    f"nothing due: {result.empty_ms:.2f} ms"
                )
    except SetupError as exc:
        print(f"bench_sweep: setup failed: {exc}", file=sys.stderr)
        return 2
    finally:
        databases.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report(figures, args.limit)
    if not args.skip_enqueue:
        enqueue_ceiling()
    return 0


def enqueue_ceiling() -> None:
    """The other half of a sweep: handing its claims to the poll queue as batch tasks.

    Sends one full sweep (KYC_SWEEP_MAX_CLAIMS claims, in KYC_POLL_BATCH_SIZE batches)
    to a local redis-server the way kyc.schedule_due_polls does, and prints the
    enqueue rate and the fleet ceiling the configured sweep gives.
    """
    from celery import Celery

    from devkit.embedded_redis import EmbeddedRedis
    from worker.config import POLL_QUEUE, Settings

    settings = Settings.from_env()
    size, claims = settings.poll_batch_size, settings.sweep_max_claims
    batches = max(claims // size, 1)
    with EmbeddedRedis() as broker:
        app = Celery(broker=broker.url, set_as_current=False)
        try:
            started = time.perf_counter()
            for n in range(batches):
                ids = list(range(n * size, (n + 1) * size))
                app.send_task("kyc.poll_batch", (ids,), queue=POLL_QUEUE, expires=120)
            seconds = time.perf_counter() - started
        finally:
            app.close()
    say()
    say("=== enqueue: one full sweep handed to the poll queue ===")
    say(
        f"{batches} batch tasks of {size} ids ({batches * size} claims) sent in {seconds:.3f} s: "
        f"{batches * size / seconds:,.0f} polls/s enqueued by one sweep"
    )
    say(
        f"fleet ceiling: KYC_SWEEP_MAX_CLAIMS {claims} per KYC_SCHEDULE_INTERVAL "
        f"{settings.schedule_interval:g} s = {claims / settings.schedule_interval:,.0f} polls/s "
        "(a sweep must claim and send its rows within the interval: see the claim figures above)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
