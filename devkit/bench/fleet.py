"""The real-pipeline benchmark: kyc-poller's fleet against a slow fake provider, next to bare
HTTP clients against the same server.

Starts on this machine: redis-server (devkit.embedded_redis), the fake providers
in a process of their own (`python -m devkit.fake_providers --server aio
--latency-ms …`, so their CPU is not ours), a throwaway PostgreSQL cluster
(devkit.embedded_postgres, as the tests use) and/or a SQLite file, and the fleet exactly as
devkit/local_fleet.py starts it (`start_worker`: the poll worker; `start_scheduler`:
beat and the control worker), so the benchmark follows the deployed commands.

For each database and workload it tracks N verifications at Notus (the product's
own insert, `insert_verification_if_absent`, 1,000 per transaction), runs the
fleet with a short poll backoff (the legacy backoff schedule mode, 1-2 s:
--poll-min/--poll-max) and no rate limit (--rate-limit), and over a measured
window after a warm-up reports:

- polls/s: completed polls counted in the database (sum of `total_polls`);
- worker+beat CPU ms per poll: user+system CPU of the poll worker, control worker
  and beat process trees (pool children included) over the window; Redis,
  PostgreSQL and the fake server are shown apart;
- event latency p50/p95/p99 and events/s (workloads with transitions): receive time on
  the Redis channel minus the event's `occurred_at`;
- who set the pace: rows claimed but not yet polled, and due rows not yet
  claimed, sampled each second. Only a fleet that never catches up is measured
  at its capacity; otherwise raise --verifications.

Workloads: `unchanged` (sessions stay PENDING), `transition` (sessions alternate
PENDING / VERIFYING: every poll is a transition with an event), and `mixed`
(--unchanged rows that stay PENDING next to --changing rows that change at every poll:
issue 16's shape, 2,000 + 300, where events leave beside a busy poll load).

Anchors, in the same run against the same server and the same session ids: a
bare loop of 50 threads sharing one `requests.Session`, and (aiohttp installed)
an asyncio client with 200 requests in flight: req/s and this process's CPU per
request. Ratios: kyc-poller polls/s to each anchor's req/s.

Before and after in one run: each `--variant NAME:KEY=VALUE,...` is the fleet with that
environment on top (e.g. `--variant ordered:KYC_RELAY_DIRECT=0 --variant direct:`); every
repeat runs all variants one after the other, so they share the machine's conditions,
and the summary prints each variant's ratios to the first.

Not a test: it asserts nothing and prints figures (medians over --repeat).
Exit status 0, or non-zero when setup fails (a service or the fleet does not start).

    .venv/bin/python scripts/bench_fleet.py                # both databases, both workloads
    .venv/bin/python scripts/bench_fleet.py --database sqlite --seconds 10 --repeat 3
    .venv/bin/python scripts/bench_fleet.py --env KYC_POLL_BATCH_SIZE=200 --concurrency 2
    .venv/bin/python scripts/bench_fleet.py --database postgres --workload mixed \
        --unchanged 2000 --changing 300 --repeat 3 \
        --variant ordered:KYC_RELAY_DIRECT=0 --variant direct:
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import psutil  # type: ignore[import-untyped]  # no types-psutil in the venv
import redis
from sqlalchemy import func, select

from devkit import local_fleet
from devkit.bench.anchors import (
    PROVIDER,
    AnchorFigures,
    FakeServer,
    SetupError,
    anchor_asyncio,
    anchor_threads,
)
from devkit.bench.processes import machine_busy_seconds, median, percentile, tree_cpu
from devkit.embedded_postgres import BenchDatabases, PostgresUnavailable
from devkit.embedded_redis import EmbeddedRedis
from models import Verification, utcnow
from models.db import Database
from worker.config import POLL_QUEUE, Settings
from worker.entrypoints.migrate import upgrade
from worker.services.tracking import insert_verification_if_absent

UNCHANGED_SCRIPT = ["PENDING"]
TRANSITION_SCRIPT = ["PENDING", "VERIFYING"]  # looped: every poll is a change
WORKLOADS = ("unchanged", "transition", "mixed")
# `--workload both`: the two uniform workloads (what the README's first table shows).
BOTH = ("unchanged", "transition")
DATABASES = ("sqlite", "postgres")
# Environment variables of the fleet this benchmark sets; inherited ones are dropped.
OWN_PREFIXES = ("KYC_", "REDIS_URL", "NOTUS_", "BANK131_", "GU1_", "PREDICATE_")


def say(line: str = "") -> None:
    print(line, flush=True)


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Options:
    databases: tuple[str, ...]
    workloads: tuple[str, ...]
    latency_ms: float
    jitter_ms: float
    verifications: int
    unchanged: int
    changing: int
    seconds: float
    warmup: float
    repeat: int
    anchor_seconds: float
    anchor_threads: int
    anchor_inflight: int
    workers: int
    concurrency: int | None
    rate_limit: int
    poll_min: float
    poll_max: float
    extra_env: dict[str, str]
    # (name, environment on top of extra_env); one unnamed variant without --variant.
    variants: tuple[tuple[str, dict[str, str]], ...]
    postgres_url: str | None
    keep_logs: Path | None


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        description="kyc-poller's real pipeline against a fake provider with latency, "
        "next to bare HTTP clients (figures only)."
    )
    parser.add_argument("--database", choices=[*DATABASES, "both"], default="both")
    parser.add_argument(
        "--workload",
        choices=[*WORKLOADS, "both", "all"],
        default="both",
        help="both: unchanged and transition; all: the three",
    )
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument(
        "--verifications",
        type=int,
        default=10_000,
        help="enough to saturate the fleet: see 'paced by' in the output",
    )
    parser.add_argument(
        "--unchanged", type=int, default=2000, help="mixed workload: rows that stay PENDING"
    )
    parser.add_argument(
        "--changing",
        type=int,
        default=300,
        help="mixed workload: rows that change at every poll",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=5.0, help="after the first polls")
    parser.add_argument("--repeat", type=int, default=1, help="report the median")
    parser.add_argument("--anchor-seconds", type=float, default=10.0)
    parser.add_argument("--anchor-threads", type=int, default=50)
    parser.add_argument("--anchor-inflight", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1, help="poll workers to start")
    parser.add_argument(
        "--concurrency",
        type=int,
        help="passed to local_fleet.start_worker (default: its own default)",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        help="NOTUS_RATE_LIMIT, fleet-wide requests/s (0: none, the default here; "
        "the product's default is 20)",
    )
    parser.add_argument("--poll-min", type=float, default=1.0, help="KYC_POLL_MIN/BASE_SECONDS")
    parser.add_argument("--poll-max", type=float, default=2.0, help="KYC_POLL_MAX_SECONDS")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the fleet (repeatable), e.g. KYC_POLL_BATCH_SIZE=200",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="run the fleet once per variant in each repeat, with this environment on top "
        "(repeatable; the summary compares each to the first)",
    )
    parser.add_argument(
        "--postgres-url", help="admin URL of a PostgreSQL server to use instead of initdb"
    )
    parser.add_argument("--keep-logs", type=Path, help="keep the fleet's logs in this directory")
    args = parser.parse_args(argv)
    extra: dict[str, str] = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--env takes KEY=VALUE, got {item!r}")
        extra[key] = value
    if args.verifications < 1 or args.seconds <= 0 or args.repeat < 1:
        parser.error("--verifications, --seconds and --repeat must be positive")
    if args.unchanged < 0 or args.changing < 0 or args.unchanged + args.changing < 1:
        parser.error("--unchanged and --changing must not be negative, nor both 0")
    workloads = {"both": BOTH, "all": WORKLOADS}.get(args.workload, (args.workload,))
    variants: list[tuple[str, dict[str, str]]] = []
    for item in args.variant:
        name, sep, rest = item.partition(":")
        if not sep or not name or name in {v[0] for v in variants}:
            parser.error(f"--variant takes a new NAME:KEY=VALUE,..., got {item!r}")
        overlay: dict[str, str] = {}
        for pair in filter(None, rest.split(",")):
            key, sep, value = pair.partition("=")
            if not sep or not key:
                parser.error(f"--variant {name}: KEY=VALUE expected, got {pair!r}")
            overlay[key] = value
        variants.append((name, overlay))
    return Options(
        databases=DATABASES if args.database == "both" else (args.database,),
        workloads=workloads,
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        verifications=args.verifications,
        unchanged=args.unchanged,
        changing=args.changing,
        seconds=args.seconds,
        warmup=args.warmup,
        repeat=args.repeat,
        anchor_seconds=args.anchor_seconds,
        anchor_threads=args.anchor_threads,
        anchor_inflight=args.anchor_inflight,
        workers=args.workers,
        concurrency=args.concurrency,
        rate_limit=args.rate_limit,
        poll_min=args.poll_min,
        poll_max=args.poll_max,
        extra_env=extra,
        variants=tuple(variants) or (("", {}),),
        postgres_url=args.postgres_url,
        keep_logs=args.keep_logs,
    )


# --------------------------------------------------------------------------- databases


# --------------------------------------------------------------------------- events


class EventRecorder:
    """Subscribes to the events channel; records (receive time, latency) per event."""

    def __init__(self, redis_url: str, channel: str) -> None:
        self.client = redis.Redis.from_url(redis_url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(channel)
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self.pubsub.get_message(timeout=0.2)
            if message is None:
                continue
            received = time.time()
            try:
                occurred = datetime.fromisoformat(json.loads(message["data"])["occurred_at"])
            except (ValueError, KeyError, TypeError):
                continue
            self.samples.append((received, received - occurred.timestamp()))

    def between(self, start: float, end: float) -> list[float]:
        return [latency for received, latency in list(self.samples) if start <= received < end]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.pubsub.close()
        self.client.close()


# --------------------------------------------------------------------------- figures


@dataclass
class FleetFigures:
    polls_per_second: float
    cpu_ms_per_poll: float
    cpu_ms_by_process: dict[str, float]
    redis_ms_per_poll: float | None
    postgres_ms_per_poll: float | None
    fake_ms_per_request: float
    events_per_second: float
    event_p50_ms: float | None
    event_p95_ms: float | None
    event_p99_ms: float | None
    fleet_cores: float
    machine_cores_busy: float
    due_rows: float
    due_lag_p50_s: float
    due_lag_max_s: float
    waiting_min: int
    waiting_mean: float
    queued_at_end: int
    insert_per_second: float
    sweep_interval: float
    # What went wrong, when something did (no poll in the window, fake server unresponsive).
    problems: str = ""

    @property
    def bound_by(self) -> str:
        """Who set the pace. With capacity to spare, the fleet polls what a sweep claimed
        before the next sweep (at some sample nothing claimed is waiting) and a due row waits
        for the next sweep at most; a saturated fleet never catches up."""
        behind = self.waiting_min > 0 or self.due_lag_p50_s > self.sweep_interval
        return "fleet" if behind else "workload"


@dataclass
class Results:
    anchors: dict[str, list[AnchorFigures]] = field(default_factory=dict)
    # (database, workload, variant) -> one FleetFigures per repeat
    fleet: dict[tuple[str, str, str], list[FleetFigures]] = field(default_factory=dict)


# --------------------------------------------------------------------------- the fleet


def fleet_env(
    options: Options, fake: FakeServer, database_url: str, redis_url: str, channel: str
) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    poll_min, poll_max = str(options.poll_min), str(options.poll_max)
    return {
        **inherited,
        **fake.env,
        "KYC_DATABASE_URL": database_url,
        "KYC_REDIS_URL": redis_url,
        "KYC_EVENTS_CHANNEL": channel,
        "KYC_LOG_FORMAT": "json",
        # Short backoff: every verification is due again within seconds, so the fleet,
        # not the workload, sets the pace (the status-aware schedule polls every minute).
        "KYC_POLL_SCHEDULE_MODE": "backoff",
        "KYC_POLL_MIN_SECONDS": poll_min,
        "KYC_POLL_BASE_SECONDS": poll_min,
        "KYC_POLL_MAX_SECONDS": poll_max,
        "KYC_ERROR_MIN_SECONDS": poll_min,
        "KYC_ERROR_BASE_SECONDS": poll_min,
        "KYC_ERROR_MAX_SECONDS": poll_max,
        f"{PROVIDER.upper()}_RATE_LIMIT": str(options.rate_limit),
        **options.extra_env,
    }


def polls_done(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.sum(Verification.total_polls))) or 0)


def row_states(db: Database, horizon: float) -> tuple[list[float], int]:
    """How late each due row is (seconds), and how many rows are claimed but not yet polled.

    A claim leases a row (next_poll_at = claim time + the lease) and its poll sets the next
    one within the backoff cap: a next_poll_at beyond `horizon` seconds (between the cap and
    the lease) is a row waiting in a claimed batch.
    """
    now = utcnow()
    with db.session() as session:
        moments = session.scalars(
            select(Verification.next_poll_at).where(
                Verification.next_poll_at.is_not(None), Verification.next_poll_at <= now
            )
        ).all()
        waiting = session.scalar(
            select(func.count()).where(Verification.next_poll_at > now + timedelta(seconds=horizon))
        )
    lags = [(now - moment).total_seconds() for moment in moments if moment is not None]
    return lags, int(waiting or 0)


def insert_verifications(db: Database, ids: Sequence[str]) -> float:
    """Track `ids` at the provider with the product's own insert (as tracking does), 1,000
    rows per transaction; all due now. Returns rows per second."""
    started = time.monotonic()
    for start in range(0, len(ids), 1000):
        with db.session() as session, session.begin():
            now = utcnow()
            for external_id in ids[start : start + 1000]:
                insert_verification_if_absent(
                    session,
                    provider=PROVIDER,
                    external_id=external_id,
                    verification_type=None,
                    now=now,
                )
    return len(ids) / (time.monotonic() - started)


def queued_tasks(client: redis.Redis) -> int:
    """Messages waiting in the poll queue (Celery's Redis transport: one list per priority)."""
    waiting = 0
    for key in client.scan_iter(match=f"{POLL_QUEUE}*"):
        if cast(bytes, client.type(key)) == b"list":
            waiting += cast(int, client.llen(key))
    return waiting


def start_fleet(options: Options, env: dict[str, str], log_dir: Path) -> list[Any]:
    """The poll worker(s) and the scheduler, through devkit.local_fleet only."""
    processes = []
    for n in range(options.workers):
        kwargs: dict[str, Any] = {}
        if options.concurrency is not None:
            kwargs["concurrency"] = options.concurrency
        if options.workers > 1:
            kwargs["name"] = f"worker{n + 1}"
        processes.append(local_fleet.start_worker(env, log_dir, **kwargs))
    processes.extend(local_fleet.start_scheduler(env, log_dir))
    return processes


def check_alive(processes: Sequence[Any]) -> None:
    for proc in processes:
        if not proc.running:
            raise SetupError(f"{proc.name} exited:\n{proc.log_tail()}")


def run_fleet(
    options: Options,
    *,
    database_url: str,
    workload: str,
    ids: Sequence[str],
    fake: FakeServer,
    redis_server: EmbeddedRedis,
    postmaster_pid: int | None,
    log_dir: Path,
) -> FleetFigures:
    upgrade(database_url)
    db = Database(database_url)
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()  # no queued batch, governor state or lease of an earlier run
    try:
        insert_per_second = insert_verifications(db, ids)
        channel = f"bench.events.{random.randrange(16**8):08x}"
        env = fleet_env(options, fake, database_url, redis_server.url, channel)
        settings = Settings.from_env(env)
        sweep_interval = settings.schedule_interval
        cap = max(settings.policy.poll_backoff.cap, settings.policy.error_backoff.cap)
        horizon = cap + max(settings.claim_lease_seconds - cap, 0) / 2
        recorder = EventRecorder(redis_server.url, channel)
        processes: list[Any] = []
        try:
            processes = start_fleet(options, env, log_dir)
            deadline = time.monotonic() + 120
            while polls_done(db) == 0:
                check_alive(processes)
                if time.monotonic() > deadline:
                    logs = "\n".join(p.log_tail() for p in processes)
                    raise SetupError(f"the fleet made no poll in 120 s:\n{logs}")
                time.sleep(0.5)
            time.sleep(options.warmup)
            check_alive(processes)

            groups = {proc.name: [proc.proc.pid] for proc in processes}
            redis_pid = int(cast(dict[str, Any], client.info("server"))["process_id"])

            def cpu_now() -> dict[str, float]:
                readings = {name: tree_cpu(pids) for name, pids in groups.items()}
                readings["[redis]"] = tree_cpu([redis_pid])
                readings["[fake]"] = fake.cpu()
                if postmaster_pid is not None and database_url.startswith("postgresql"):
                    readings["[postgres]"] = tree_cpu([postmaster_pid])
                return readings

            t0, wall0, cpu0, polls0 = time.monotonic(), time.time(), cpu_now(), polls_done(db)
            machine0 = machine_busy_seconds()
            end = t0 + options.seconds
            lag_samples: list[list[float]] = []
            waiting_samples: list[int] = []
            next_progress = t0 + 2.0
            while (left := end - time.monotonic()) > 0:
                time.sleep(min(1.0, left))
                check_alive(processes)
                if end - time.monotonic() > 0.5:
                    lags, waiting = row_states(db, horizon)
                    lag_samples.append(lags)
                    waiting_samples.append(waiting)
                if time.monotonic() >= next_progress:
                    next_progress += 2.0
                    elapsed = time.monotonic() - t0
                    polls = polls_done(db) - polls0
                    waiting_now = waiting_samples[-1] if waiting_samples else 0
                    print(
                        f"  … {elapsed:4.0f}/{options.seconds:g} s: {polls} polls "
                        f"({polls / elapsed:.0f}/s), {waiting_now} claimed and waiting",
                        file=sys.stderr,
                        flush=True,
                    )
            t1, wall1, cpu1, polls1 = time.monotonic(), time.time(), cpu_now(), polls_done(db)
            machine1 = machine_busy_seconds()
            queued = queued_tasks(client)
            problems = fake.health_problem()
            if polls1 == polls0:
                tails = "\n".join(f"--- {p.name} log:\n{p.log_tail(20)}" for p in processes)
                problems += f"no poll completed in the window\n{tails}"
        finally:
            for proc in reversed(processes):
                proc.stop()
            recorder.stop()
    finally:
        client.close()
        db.dispose()

    polls = max(polls1 - polls0, 0)
    elapsed = t1 - t0
    per_poll = {name: 1000 * (cpu1[name] - cpu0.get(name, 0.0)) / max(polls, 1) for name in cpu1}
    fleet_names = [name for name in per_poll if not name.startswith("[")]
    latencies = recorder.between(wall0, wall1)
    busy = machine1[0] - machine0[0]
    machine_total = machine1[1] - machine0[1]
    cores = psutil.cpu_count() or 1
    return FleetFigures(
        polls_per_second=polls / elapsed,
        cpu_ms_per_poll=sum(per_poll[name] for name in fleet_names),
        cpu_ms_by_process={name: per_poll[name] for name in fleet_names},
        redis_ms_per_poll=per_poll.get("[redis]"),
        postgres_ms_per_poll=per_poll.get("[postgres]"),
        fake_ms_per_request=per_poll["[fake]"],
        events_per_second=len(latencies) / elapsed,
        event_p50_ms=1000 * percentile(latencies, 0.5) if latencies else None,
        event_p95_ms=1000 * percentile(latencies, 0.95) if latencies else None,
        event_p99_ms=1000 * percentile(latencies, 0.99) if latencies else None,
        fleet_cores=sum(cpu1[n] - cpu0.get(n, 0.0) for n in fleet_names) / elapsed,
        machine_cores_busy=cores * busy / machine_total if machine_total > 0 else 0.0,
        due_rows=statistics.mean(len(sample) for sample in lag_samples) if lag_samples else 0.0,
        due_lag_p50_s=statistics.median(
            statistics.median(sample) if sample else 0.0 for sample in lag_samples
        )
        if lag_samples
        else 0.0,
        due_lag_max_s=max((max(sample) for sample in lag_samples if sample), default=0.0),
        waiting_min=min(waiting_samples, default=0),
        waiting_mean=statistics.mean(waiting_samples) if waiting_samples else 0.0,
        queued_at_end=queued,
        insert_per_second=insert_per_second,
        sweep_interval=sweep_interval,
        problems=problems,
    )


# --------------------------------------------------------------------------- report


def fmt(value: float | None, width: int, digits: int = 1) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or not b:
        return "-"
    return f"{a / b:.3f}"


def report(options: Options, results: Results, concurrency_note: str) -> None:
    say()
    say(f"=== summary: median of {options.repeat} run(s) ===")
    say(
        f"fake provider: {PROVIDER}, {options.latency_ms:g} ms latency "
        f"(jitter {options.jitter_ms:g} ms), aio server in its own process"
    )
    say(
        f"fleet: {options.workers} poll worker(s) via local_fleet.start_worker "
        f"({concurrency_note}), beat + control worker via local_fleet.start_scheduler"
    )
    rate = "none" if options.rate_limit == 0 else f"{options.rate_limit}/s"
    extra = " ".join(f"{k}={v}" for k, v in options.extra_env.items()) or "-"
    say(
        f"       NOTUS_RATE_LIMIT: {rate}; "
        f"KYC_POLL_SCHEDULE_MODE=backoff, {options.poll_min:g}-{options.poll_max:g} s; "
        f"extra env: {extra}"
    )
    if options.variants[0][0]:
        say(
            "       variants, in this order in each repeat: "
            + "; ".join(
                f"{name} ({' '.join(f'{k}={v}' for k, v in env.items()) or 'no change'})"
                for name, env in options.variants
            )
        )
    sizes = []
    if set(options.workloads) & set(BOTH):
        sizes.append(f"{options.verifications} verifications (unchanged, transition)")
    if "mixed" in options.workloads:
        sizes.append(f"mixed: {options.unchanged} unchanged + {options.changing} changing")
    say(
        f"workload: {'; '.join(sizes)}; window {options.seconds:g} s "
        f"after {options.warmup:g} s warm-up"
    )
    say()
    anchors = {
        name: (
            median([f.requests_per_second for f in runs]),
            median([f.cpu_ms_per_request for f in runs]),
            median([f.fake_ms_per_request for f in runs]),
            sum(f.errors for f in runs),
        )
        for name, runs in results.anchors.items()
    }
    say("anchors (same server, same session ids; CPU of this client process)")
    say(
        f"{'client':<34}{'req/s':>9}{'client CPU ms/req':>19}{'server CPU ms/req':>19}{'errors':>8}"
    )
    for name, (rps, cpu, server_cpu, errors) in anchors.items():
        say(f"{name:<34}{fmt(rps, 9)}{fmt(cpu, 19, 3)}{fmt(server_cpu, 19, 3)}{errors:>8}")
    threads_rps = anchors.get("threads", (None,))[0]
    asyncio_rps = anchors.get("asyncio", (None,))[0]
    # A run with a problem (no poll in the window, the fake server stuck) is left out of the
    # medians, unless every run of that database and workload had one.
    runs_by_key = [
        (key, [f for f in runs if not f.problems] or runs) for key, runs in results.fleet.items()
    ]

    def med(runs: list[FleetFigures], value: Callable[[FleetFigures], float | None]) -> Any:
        return median([value(f) for f in runs])

    say()
    say("kyc-poller: throughput (worker + beat = poll worker(s), control worker, beat)")
    say(
        f"{'database':<10}{'workload':<{_NAME}}{'polls/s':>9}{'CPU ms/poll':>13}"
        f"{'÷ threads':>11}{'÷ asyncio':>11}{'due rows':>10}{'lag p50 s':>11}"
        f"{'waiting min':>13}{'mean':>7}{'paced by':>10}"
    )
    for (database, workload, variant), runs in runs_by_key:
        workload = _row_name(workload, variant)
        pps = med(runs, lambda f: f.polls_per_second)
        paced = sorted(f.bound_by for f in runs)[len(runs) // 2]
        say(
            f"{database:<10}{workload:<{_NAME}}{fmt(pps, 9)}"
            f"{fmt(med(runs, lambda f: f.cpu_ms_per_poll), 13, 2)}"
            f"{ratio(pps, threads_rps):>11}{ratio(pps, asyncio_rps):>11}"
            f"{fmt(med(runs, lambda f: f.due_rows), 10, 0)}"
            f"{fmt(med(runs, lambda f: f.due_lag_p50_s), 11, 2)}"
            f"{fmt(med(runs, lambda f: f.waiting_min), 13, 0)}"
            f"{fmt(med(runs, lambda f: f.waiting_mean), 7, 0)}{paced:>10}"
        )
    say()
    say("kyc-poller: event latency (receive time - occurred_at)")
    say(
        f"{'database':<10}{'workload':<{_NAME}}{'events/s':>10}{'p50 ms':>10}{'p95 ms':>10}"
        f"{'p99 ms':>10}"
    )
    for (database, workload, variant), runs in runs_by_key:
        workload = _row_name(workload, variant)
        say(
            f"{database:<10}{workload:<{_NAME}}{fmt(med(runs, lambda f: f.events_per_second), 10)}"
            f"{fmt(med(runs, lambda f: f.event_p50_ms), 10)}"
            f"{fmt(med(runs, lambda f: f.event_p95_ms), 10)}"
            f"{fmt(med(runs, lambda f: f.event_p99_ms), 10)}"
        )
    say()
    say("CPU: ms per poll by process; then around the fleet (not counted in CPU ms/poll)")
    names = sorted({n for _, runs in runs_by_key for f in runs for n in f.cpu_ms_by_process})
    header = "".join(f"{n:>9}" for n in names)
    say(
        f"{'database':<10}{'workload':<{_NAME}}{header}{'redis':>8}{'postgres':>9}{'fake':>7}"
        f"{'fleet cores':>12}{'machine busy':>13}{'inserts/s':>10}"
    )
    for (database, workload, variant), runs in runs_by_key:
        workload = _row_name(workload, variant)
        by_name = "".join(
            fmt(median([f.cpu_ms_by_process.get(n) for f in runs]), 9, 2) for n in names
        )
        say(
            f"{database:<10}{workload:<{_NAME}}{by_name}"
            f"{fmt(med(runs, lambda f: f.redis_ms_per_poll), 8, 2)}"
            f"{fmt(med(runs, lambda f: f.postgres_ms_per_poll), 9, 2)}"
            f"{fmt(med(runs, lambda f: f.fake_ms_per_request), 7, 3)}"
            f"{fmt(med(runs, lambda f: f.fleet_cores), 12, 2)}"
            f"{fmt(med(runs, lambda f: f.machine_cores_busy), 9, 2)}/{psutil.cpu_count()}"
            f"{fmt(med(runs, lambda f: f.insert_per_second), 11, 0)}"
        )
    say()
    say(
        "Sampled each second of the window: due rows (due, not yet claimed) and their lag; "
        "waiting: rows claimed but not yet polled. Paced by the fleet when claimed rows never "
        "all got polled before the next sample (or due rows waited longer than a sweep "
        "interval): only then is polls/s the fleet's capacity; paced by the workload means "
        "the fleet had capacity to spare (more --verifications would push it). fleet cores: "
        "worker + beat CPU seconds per second; machine busy: every process on the machine, "
        "other load included."
    )
    if len(options.variants) > 1:
        compare_variants(options, dict(runs_by_key))
    troubled = sum(1 for runs in results.fleet.values() for f in runs if f.problems)
    if troubled:
        say(
            f"WARNING: {troubled} run(s) had problems (see their WARNING lines above) and are "
            "left out of the medians."
        )


_NAME = 22  # width of the workload (and variant) column


def _row_name(workload: str, variant: str) -> str:
    return f"{workload} {variant}" if variant else workload


def compare_variants(
    options: Options, runs: dict[tuple[str, str, str], list[FleetFigures]]
) -> None:
    """Each variant's medians divided by the first variant's (same database and workload)."""
    first = options.variants[0][0]
    say()
    say(f"variants against {first!r} (median / median; below 1: less of it)")
    say(
        f"{'database':<10}{'workload':<{_NAME}}{'polls/s':>9}{'CPU/poll':>10}"
        f"{'p50':>8}{'p95':>8}{'p99':>8}"
    )
    figures: list[Callable[[FleetFigures], float | None]] = [
        lambda f: f.polls_per_second,
        lambda f: f.cpu_ms_per_poll,
        lambda f: f.event_p50_ms,
        lambda f: f.event_p95_ms,
        lambda f: f.event_p99_ms,
    ]
    for database, workload in itertools.product(options.databases, options.workloads):
        base = runs.get((database, workload, first))
        if not base:
            continue
        for variant, _ in options.variants[1:]:
            other = runs.get((database, workload, variant))
            if not other:
                continue
            ratios = [
                ratio(median([value(f) for f in other]), median([value(f) for f in base]))
                for value in figures
            ]
            say(
                f"{database:<10}{_row_name(workload, variant):<{_NAME}}{ratios[0]:>9}"
                f"{ratios[1]:>10}{ratios[2]:>8}{ratios[3]:>8}{ratios[4]:>8}"
            )


# --------------------------------------------------------------------------- main


def describe(figures: FleetFigures) -> str:
    by_process = ", ".join(f"{k} {v:.2f}" for k, v in figures.cpu_ms_by_process.items())
    return (
        f"{figures.polls_per_second:.1f} polls/s, {figures.cpu_ms_per_poll:.2f} CPU ms/poll "
        f"({by_process}; {figures.fleet_cores:.2f} cores, machine "
        f"{figures.machine_cores_busy:.2f} busy), events {figures.events_per_second:.1f}/s "
        f"p50 {fmt(figures.event_p50_ms, 0)} ms p95 {fmt(figures.event_p95_ms, 0)} ms "
        f"p99 {fmt(figures.event_p99_ms, 0)} ms; "
        f"due {figures.due_rows:.0f} rows, lag p50 {figures.due_lag_p50_s:.2f} s "
        f"max {figures.due_lag_max_s:.1f} s; claimed and waiting min {figures.waiting_min} "
        f"mean {figures.waiting_mean:.0f}: paced by the {figures.bound_by}"
        + (f"\nWARNING: {figures.problems}" if figures.problems else "")
    )


def concurrency_note(options: Options) -> str:
    if options.concurrency is not None:
        return f"concurrency={options.concurrency}"
    default = getattr(local_fleet, "POLL_WORKER_CONCURRENCY", None)
    return f"its default concurrency={default}" if default is not None else "its defaults"


def run(options: Options, workdir: Path) -> Results:
    results = Results()
    tag = f"{random.randrange(16**6):06x}"
    ids = {
        workload: [f"bench-{workload[0]}-{tag}-{n}" for n in range(options.verifications)]
        for workload in BOTH
    }
    mixed_unchanged = [f"bench-mu-{tag}-{n}" for n in range(options.unchanged)]
    mixed_changing = [f"bench-mc-{tag}-{n}" for n in range(options.changing)]
    ids["mixed"] = mixed_unchanged + mixed_changing
    with contextlib.ExitStack() as stack:
        try:
            redis_server = EmbeddedRedis().start()
        except RuntimeError as exc:
            raise SetupError(str(exc)) from exc
        stack.callback(redis_server.stop)
        fake = FakeServer(options.latency_ms, options.jitter_ms, workdir)
        stack.callback(fake.stop)
        fake.add_sessions(ids["unchanged"], UNCHANGED_SCRIPT, loop=False)
        if "transition" in options.workloads:
            fake.add_sessions(ids["transition"], TRANSITION_SCRIPT, loop=True)
        if "mixed" in options.workloads:
            fake.add_sessions(mixed_unchanged, UNCHANGED_SCRIPT, loop=False)
            fake.add_sessions(mixed_changing, TRANSITION_SCRIPT, loop=True)
        databases = BenchDatabases(workdir, options.postgres_url, prefix="kyc_bench")
        stack.callback(databases.stop)
        if "postgres" in options.databases:
            try:
                databases.start_postgres()
            except PostgresUnavailable as exc:
                raise SetupError(f"{exc}; or use --database sqlite") from exc
        say(f"fake providers: {fake.url} (aio server); redis: {redis_server.url}")

        for repeat in range(1, options.repeat + 1):
            say(f"--- run {repeat}/{options.repeat}")
            threads = anchor_threads(
                fake, ids["unchanged"], options.anchor_threads, options.anchor_seconds
            )
            results.anchors.setdefault("threads", []).append(threads)
            say(
                f"anchor requests.Session x {options.anchor_threads} threads: "
                f"{threads.requests_per_second:.1f} req/s, {threads.cpu_ms_per_request:.3f} "
                f"client CPU ms/req, {threads.errors} errors"
            )
            asyncio_figures = anchor_asyncio(
                fake, ids["unchanged"], options.anchor_inflight, options.anchor_seconds
            )
            if asyncio_figures is not None:
                results.anchors.setdefault("asyncio", []).append(asyncio_figures)
                say(
                    f"anchor aiohttp, {options.anchor_inflight} in flight: "
                    f"{asyncio_figures.requests_per_second:.1f} req/s, "
                    f"{asyncio_figures.cpu_ms_per_request:.3f} client CPU ms/req, "
                    f"{asyncio_figures.errors} errors"
                )
            for database, workload, (variant, overlay) in itertools.product(
                options.databases, options.workloads, options.variants
            ):
                name = "-".join(filter(None, (database, workload, variant)))
                log_dir = workdir / f"logs-{repeat}-{name}"
                log_dir.mkdir()
                with databases.fresh(database) as url:
                    figures = run_fleet(
                        dataclasses.replace(options, extra_env={**options.extra_env, **overlay}),
                        database_url=url,
                        workload=workload,
                        ids=ids[workload],
                        fake=fake,
                        redis_server=redis_server,
                        postmaster_pid=databases.postmaster_pid,
                        log_dir=log_dir,
                    )
                results.fleet.setdefault((database, workload, variant), []).append(figures)
                say(f"kyc-poller {name.replace('-', '/')}: {describe(figures)}")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    workdir = Path(tempfile.mkdtemp(prefix="kyc-bench-fleet-"))
    try:
        results = run(options, workdir)
    except SetupError as exc:
        print(f"bench_fleet: setup failed: {exc}", file=sys.stderr)
        return 2
    finally:
        if options.keep_logs is not None:
            options.keep_logs.mkdir(parents=True, exist_ok=True)
            for log in workdir.glob("**/*.log"):
                target = options.keep_logs / f"{log.parent.name}-{log.name}"
                shutil.copy(log, target)
        shutil.rmtree(workdir, ignore_errors=True)
    report(options, results, concurrency_note(options))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
