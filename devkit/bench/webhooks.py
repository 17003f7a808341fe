"""The webhook benchmark: signed gu1 webhooks into the real service, out as events on the stream.

Starts on this machine: redis-server (devkit.embedded_redis), a throwaway PostgreSQL
cluster (devkit.embedded_postgres) or a SQLite file, the fake providers in a process of
their own (`--latency-ms`, 100 by default: each poll waits that long for gu1), the HTTP
service (`kyc-poller serve`) and one poll worker exactly as devkit/local_fleet.py starts
them (no beat: nothing but the webhooks makes the worker poll). Every webhook names its
own tracked validation whose next scheduled poll is a day away.

Load: this process sends `--rate` signed webhooks per second, open loop (each at its
slot, whether or not earlier ones were answered), for `--seconds`. Figures, per run:

- latency from a webhook's send to its event's entry on the Redis Stream (the entry id
  is Redis's clock at XADD; the same host's clock): p50 / p95 / p99, and how many events
  arrived of the webhooks accepted;
- the achieved rate, and the HTTP answer time of the service (p50 / p99);
- CPU ms per webhook: the service's process, the worker's tree, apart;
- the anchor: a bare aiohttp.web endpoint doing only the signature check
  (devkit.bench.webhook_anchor), at the same rate from the same generator: its answer
  time and CPU per request, and the ratios service / anchor.

`--hostile` adds a run of bad and missing signatures, 10 MB bodies, 100k-deep JSON (the
body bound raised to 256 KiB for it, so the depth bound is what refuses it), a 5,000/s
flood of validly signed webhooks for one id, unknown ids and replays; it prints the
refusals by reason (the service's own metrics), its peak RSS, the polls the flooded id
got per collapse window, and whether any log line holds a personal value.

Not a test: it asserts nothing and prints figures (medians over --repeat).

    .venv/bin/python scripts/bench_webhooks.py                  # 500/s for 20 s, PostgreSQL
    .venv/bin/python scripts/bench_webhooks.py --repeat 3 --hostile
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import io
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psutil  # type: ignore[import-untyped]  # no types-psutil in the venv
import redis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from devkit import local_fleet
from devkit.bench.anchors import FakeServer, SetupError
from devkit.bench.processes import machine_busy_seconds, median, percentile, tree_cpu
from devkit.embedded_postgres import BenchDatabases, PostgresUnavailable
from devkit.embedded_redis import EmbeddedRedis
from devkit.fake_providers.gu1 import PERSONAL_VALUES
from models import Verification, utcnow
from models.db import Database
from worker.entrypoints.migrate import upgrade
from worker.services.tracking import insert_verification_if_absent

SECRET = "bench-gu1-webhook-secret"
PERSONAL_MARKER = "Personal-Marker-Ana-Benchmark"


def say(text: str) -> None:
    print(text, flush=True)


@dataclass(frozen=True)
class Options:
    rate: float
    seconds: float
    repeat: int
    latency_ms: float
    database: str
    postgres_url: str | None
    hostile: bool
    flood_rate: float
    flood_seconds: float
    env: dict[str, str]
    profile: Path | None = None


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="bench_webhooks.py",
        description="Signed gu1 webhooks into the real service and worker; latency to the "
        "event stream, CPU, next to a bare aiohttp endpoint (see devkit/bench/webhooks.py).",
    )
    parser.add_argument("--rate", type=float, default=500.0, help="webhooks per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each run")
    parser.add_argument("--repeat", type=int, default=1, help="runs (medians are printed)")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="the fake's latency")
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--postgres-url", help="a PostgreSQL server to use instead of our own")
    parser.add_argument("--hostile", action="store_true", help="add the hostile run")
    parser.add_argument("--flood-rate", type=float, default=5000.0)
    parser.add_argument("--flood-seconds", type=float, default=3.0)
    parser.add_argument(
        "--profile",
        type=Path,
        help="record py-spy profiles (collapsed stacks) of the service and the worker tree "
        "during each run into this directory (py-spy must be on PATH)",
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="for service and worker"
    )
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    return Options(
        args.rate,
        args.seconds,
        max(args.repeat, 1),
        args.latency_ms,
        args.database,
        args.postgres_url,
        args.hostile,
        args.flood_rate,
        args.flood_seconds,
        env,
        args.profile,
    )


def start_profiles(
    options: Options, pids: dict[str, int], tag: str
) -> list[subprocess.Popen[bytes]]:
    """py-spy on each process for the run's length (nothing when --profile is not given)."""
    if options.profile is None:
        return []
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    options.profile.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [
                spy,
                "record",
                "--subprocesses",
                "--format",
                "raw",
                "--rate",
                "100",
                "--duration",
                str(int(options.seconds)),
                "--pid",
                str(pid),
                "--output",
                str(options.profile / f"{name}-{tag}.txt"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]


# --------------------------------------------------------------------------- load


def gu1_webhook(validation_id: str, *, nonce: int = 0) -> bytes:
    document = {
        "event": "kyc.validation_approved",
        "timestamp": utcnow().isoformat(),
        "organizationId": "org-bench",
        "payload": {
            "validationId": validation_id,
            "entityId": "ent-bench",
            "status": "approved",
            "firstName": PERSONAL_MARKER,
            "nonce": nonce,
        },
    }
    return json.dumps(document).encode()


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Load:
    sent: dict[str, float] = field(default_factory=dict)  # id -> wall time at send
    answer_seconds: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    started: float = 0.0
    finished: float = 0.0

    @property
    def achieved_rate(self) -> float:
        span = self.finished - self.started
        return len(self.answer_seconds) / span if span > 0 else 0.0


async def _send_all(
    url: str, bodies: Sequence[tuple[str, bytes, dict[str, str]]], rate: float, load: Load
) -> None:
    connector = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(key: str, body: bytes, headers: dict[str, str]) -> None:
            began = time.perf_counter()
            load.sent.setdefault(key, time.time())
            try:
                data: Any = io.BytesIO(body) if len(body) > 1_000_000 else body
                async with session.post(url, data=data, headers=headers) as response:
                    await response.read()
                    load.statuses[response.status] += 1
            except (aiohttp.ClientError, OSError, TimeoutError):
                load.errors += 1
                return
            load.answer_seconds.append(time.perf_counter() - began)

        tasks = []
        loop = asyncio.get_running_loop()
        load.started = time.time()
        start = loop.time()
        for index, (key, body, headers) in enumerate(bodies):
            delay = start + index / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(key, body, headers)))
        await asyncio.gather(*tasks)
        load.finished = time.time()


def send_webhooks(
    url: str, bodies: Sequence[tuple[str, bytes, dict[str, str]]], rate: float
) -> Load:
    load = Load()
    asyncio.run(_send_all(url, bodies, rate, load))
    return load


def signed_bodies(ids: Sequence[str]) -> list[tuple[str, bytes, dict[str, str]]]:
    out = []
    for external_id in ids:
        body = gu1_webhook(external_id)
        out.append((external_id, body, {"X-Webhook-Signature": sign(body)}))
    return out


# --------------------------------------------------------------------------- the stack


@dataclass
class RunFigures:
    accepted: int
    events: int
    latency_p50: float
    latency_p95: float
    latency_p99: float
    rate: float
    answer_p50_ms: float
    answer_p99_ms: float
    service_cpu_ms: float
    worker_cpu_ms: float
    errors: int
    # Of the machine's CPU over the run: all processes, and ours (the whole stack and load).
    machine_busy: float = math.nan
    ours_busy: float = math.nan


@dataclass
class AnchorRun:
    rate: float
    answer_p50_ms: float
    answer_p99_ms: float
    cpu_ms: float


def add_gu1_sessions(fake: FakeServer, ids: Sequence[str], script: list[str]) -> None:
    for start in range(0, len(ids), 1000):
        sessions = [
            {"provider": "gu1", "id": i, "script": script} for i in ids[start : start + 1000]
        ]
        answer = fake.http.post(
            fake.url + "/_fake/sessions/batch", json={"sessions": sessions}, timeout=30
        )
        if answer.status_code != 201:
            raise SetupError(f"scripting the fake sessions failed: {answer.text[:200]}")


def track(db: Database, ids: Sequence[str]) -> None:
    """Track `ids` at gu1, their scheduled poll a day away: only a hint polls them now."""
    later = utcnow() + timedelta(days=1)
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        with db.session() as session, session.begin():
            now = utcnow()
            for external_id in chunk:
                insert_verification_if_absent(
                    session,
                    provider="gu1",
                    external_id=external_id,
                    verification_type=None,
                    now=now,
                )
            session.execute(
                update(Verification)
                .where(Verification.provider == "gu1", Verification.external_id.in_(chunk))
                .values(next_poll_at=later)
            )


def stream_arrivals(client: redis.Redis, stream: str, after: str = "-") -> dict[str, float]:
    """external_id -> the stream entry's time (its id's milliseconds), for every entry."""
    arrivals: dict[str, float] = {}
    start = after
    while True:
        entries: Any = client.xrange(stream, min=start, count=5000)
        if not entries:
            return arrivals
        for entry_id, fields in entries:
            event = json.loads(fields[b"event"])
            arrivals.setdefault(event["external_id"], int(entry_id.split(b"-")[0]) / 1000.0)
        last = entries[-1][0].decode()
        start = "(" + last


def wait_for_events(client: redis.Redis, stream: str, wanted: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _length(client, stream) < wanted:
        time.sleep(0.2)


def _length(client: redis.Redis, stream: str) -> int:
    return int(client.xlen(stream))  # type: ignore[arg-type]


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def run_webhooks(
    options: Options,
    env: dict[str, str],
    port: int,
    service: Any,
    worker: Any,
    client: redis.Redis,
    db: Database,
    fake: FakeServer,
    tag: str,
    others: Sequence[int] = (),
) -> RunFigures:
    count = int(options.rate * options.seconds)
    ids = [f"val-{tag}-{n}" for n in range(count)]
    add_gu1_sessions(fake, ids, ["approved"])
    track(db, ids)
    stream = env["KYC_EVENTS_CHANNEL"] + ".stream"
    before = _length(client, stream)
    cpu_service, cpu_worker = tree_cpu([service.proc.pid]), tree_cpu([worker.proc.pid])
    stack = [service.proc.pid, worker.proc.pid, fake.proc.pid, *others]
    ours_before, self_before = tree_cpu(stack), time.process_time()
    busy_before, total_before = machine_busy_seconds()
    spies = start_profiles(options, {"service": service.proc.pid, "worker": worker.proc.pid}, tag)
    load = send_webhooks(f"http://127.0.0.1:{port}/webhooks/gu1", signed_bodies(ids), options.rate)
    accepted = load.statuses[202]
    wait_for_events(client, stream, before + accepted, timeout=60)
    cpu_service = tree_cpu([service.proc.pid]) - cpu_service
    cpu_worker = tree_cpu([worker.proc.pid]) - cpu_worker
    busy, total = machine_busy_seconds()
    ours = tree_cpu(stack) - ours_before + time.process_time() - self_before
    machine_share = (busy - busy_before) / max(total - total_before, 1e-9)
    ours_share = ours / max((total - total_before), 1e-9)
    for spy in spies:
        spy.wait(60)
    arrivals = stream_arrivals(client, stream)
    latencies = [arrivals[i] - load.sent[i] for i in ids if i in arrivals and i in load.sent]
    answers = load.answer_seconds or [0.0]
    return RunFigures(
        accepted=accepted,
        events=len(latencies),
        latency_p50=percentile(latencies, 0.50) if latencies else math.nan,
        latency_p95=percentile(latencies, 0.95) if latencies else math.nan,
        latency_p99=percentile(latencies, 0.99) if latencies else math.nan,
        rate=load.achieved_rate,
        answer_p50_ms=percentile(answers, 0.5) * 1000,
        answer_p99_ms=percentile(answers, 0.99) * 1000,
        service_cpu_ms=cpu_service * 1000 / max(count, 1),
        worker_cpu_ms=cpu_worker * 1000 / max(count, 1),
        errors=load.errors + sum(n for status, n in load.statuses.items() if status != 202),
        machine_busy=machine_share,
        ours_busy=ours_share,
    )


def run_anchor(options: Options, tag: str) -> AnchorRun:
    port = local_fleet.free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devkit.bench.webhook_anchor",
            "--port",
            str(port),
            "--secret",
            SECRET,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with contextlib.closing(
                    __import__("socket").create_connection(("127.0.0.1", port), 1)
                ):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SetupError("the anchor endpoint did not start") from None
                time.sleep(0.1)
        ids = [f"anchor-{tag}-{n}" for n in range(int(options.rate * options.seconds))]
        cpu = tree_cpu([proc.pid])
        load = send_webhooks(
            f"http://127.0.0.1:{port}/webhooks/gu1", signed_bodies(ids), options.rate
        )
        cpu = tree_cpu([proc.pid]) - cpu
        answers = load.answer_seconds or [0.0]
        return AnchorRun(
            rate=load.achieved_rate,
            answer_p50_ms=percentile(answers, 0.5) * 1000,
            answer_p99_ms=percentile(answers, 0.99) * 1000,
            cpu_ms=cpu * 1000 / max(len(ids), 1),
        )
    finally:
        proc.terminate()
        proc.wait(10)


# --------------------------------------------------------------------------- hostile


class PeakRss:
    """The peak resident memory of a process, sampled every 50 ms on a thread."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self.baseline = self.peak
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def hostile_bodies(
    tracked_id: str, flood: int
) -> dict[str, list[tuple[str, bytes, dict[str, str]]]]:
    good = gu1_webhook(tracked_id)
    big = b'{"a": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    deep = b"[" * 100_000 + b"]" * 100_000
    replay = gu1_webhook(tracked_id, nonce=-1)
    unknown = [gu1_webhook(f"val-unknown-{n}") for n in range(200)]
    return {
        "bad signature": [("bad", good, {"X-Webhook-Signature": "ab" * 32})] * 500,
        "missing signature": [("missing", good, {})] * 500,
        "10 MB bodies": [("big", big, {"X-Webhook-Signature": sign(big)})] * 5,
        "100k-deep JSON": [("deep", deep, {"X-Webhook-Signature": sign(deep)})] * 20,
        "unknown ids": [("u", b, {"X-Webhook-Signature": sign(b)}) for b in unknown],
        "replays": [("r", replay, {"X-Webhook-Signature": sign(replay)})] * 200,
        "flood": [
            ("f", b, {"X-Webhook-Signature": sign(b)})
            for b in (gu1_webhook(tracked_id, nonce=n) for n in range(flood))
        ],
    }


def run_hostile(
    options: Options,
    env: dict[str, str],
    workdir: Path,
    db: Database,
    fake: FakeServer,
    worker: Any,
) -> None:
    tag = f"{random.randrange(16**6):06x}"
    flooded = f"val-flood-{tag}"
    add_gu1_sessions(fake, [flooded], ["pending"])
    track(db, [flooded])
    port = local_fleet.free_port()
    log_dir = workdir / "hostile"
    log_dir.mkdir()
    hostile_env = {**env, "KYC_WEBHOOK_MAX_BODY_BYTES": "262144"}
    service = local_fleet.start_service(hostile_env, log_dir, port=port)
    try:
        local_fleet.wait_for_http(f"http://127.0.0.1:{port}/livez", process=service)
        rss = PeakRss(service.proc.pid)
        url = f"http://127.0.0.1:{port}/webhooks/gu1"
        groups = hostile_bodies(flooded, int(options.flood_rate * options.flood_seconds))
        say("hostile run:")
        for name, bodies in groups.items():
            rate = options.flood_rate if name == "flood" else 500.0
            began = time.monotonic()
            load = send_webhooks(url, bodies, rate)
            spent = time.monotonic() - began
            shown = ", ".join(f"{status}: {n}" for status, n in sorted(load.statuses.items()))
            say(
                f"  {name:<18} {len(bodies):>6} sent at {load.achieved_rate:7.0f}/s "
                f"-> {shown}{f', {load.errors} errors' if load.errors else ''}"
            )
            if name == "flood":
                time.sleep(1.0)
                polls = fake.http.get(f"{fake.url}/_fake/sessions/gu1/{flooded}", timeout=10).json()
                collapse = float(env.get("KYC_HINT_COLLAPSE_SECONDS", "5"))
                windows = math.ceil((spent + 1.0) / collapse)
                say(
                    f"  flooded id: {polls['requests']} polls in {spent:.1f} s "
                    f"(at most {windows} collapse windows of {collapse:g} s)"
                )
        rss.stop()
        samples = scrape(port)
        refusals = {
            dict(labels)["result"]: value
            for (name, labels), value in samples.items()
            if name == "kyc_poller_webhooks_total"
        }
        hints = {
            dict(labels)["outcome"]: value
            for (name, labels), value in samples.items()
            if name == "kyc_poller_hints_total"
        }
        say(
            "  webhooks by result: "
            + ", ".join(f"{k} {v:.0f}" for k, v in sorted(refusals.items()))
        )
        say("  hints by outcome:   " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(hints.items())))
        say(
            f"  service RSS: {rss.baseline / 2**20:.1f} MiB before, peak {rss.peak / 2**20:.1f} MiB"
        )
    finally:
        service.stop()
    logs = service.log_path.read_text(errors="replace") + worker.log_path.read_text(
        errors="replace"
    )
    leaked = [v for v in (*PERSONAL_VALUES, PERSONAL_MARKER, "ent-bench") if v in logs]
    say(
        f"  personal values in service and worker logs: {leaked or 'none'} "
        f"({len(logs.splitlines())} lines read)"
    )


# --------------------------------------------------------------------------- main


def run(options: Options, workdir: Path) -> tuple[list[RunFigures], list[AnchorRun]]:
    figures: list[RunFigures] = []
    anchors: list[AnchorRun] = []
    with contextlib.ExitStack() as stack:
        try:
            redis_server = EmbeddedRedis().start()
        except RuntimeError as exc:
            raise SetupError(str(exc)) from exc
        stack.callback(redis_server.stop)
        fake = FakeServer(options.latency_ms, 0.0, workdir)
        stack.callback(fake.stop)
        databases = BenchDatabases(workdir, options.postgres_url, prefix="kyc_bench_webhooks")
        stack.callback(databases.stop)
        if options.database == "postgres":
            try:
                databases.start_postgres()
            except PostgresUnavailable as exc:
                raise SetupError(f"{exc}; or use --database sqlite") from exc
        url = stack.enter_context(databases.fresh(options.database))
        upgrade(url)
        db = Database(url)
        stack.callback(db.dispose)
        client = redis.Redis.from_url(redis_server.url)
        stack.callback(client.close)
        env = {
            **os.environ,
            **fake.env,
            "KYC_DATABASE_URL": url,
            "KYC_REDIS_URL": redis_server.url,
            "KYC_EVENTS_CHANNEL": f"bench.webhooks.{random.randrange(16**6):06x}",
            "KYC_LOG_FORMAT": "json",
            "KYC_METRICS_PORT": "0",
            "GU1_WEBHOOK_SECRET": SECRET,
            "GU1_RATE_LIMIT": "0",
            **options.env,
        }
        others = [pid for pid in (redis_server.pid, databases.postmaster_pid) if pid]
        port = local_fleet.free_port()
        service = local_fleet.start_service(env, workdir, port=port)
        stack.callback(service.stop)
        worker = local_fleet.start_worker(env, workdir)
        stack.callback(worker.stop)
        local_fleet.wait_for_http(f"http://127.0.0.1:{port}/livez", process=service)
        # Warm up: the worker's pool and connections, the service's buffer.
        run_webhooks(
            Options(**{**options.__dict__, "seconds": 2.0, "profile": None}),
            env,
            port,
            service,
            worker,
            client,
            db,
            fake,
            "warm",
        )
        for repeat in range(1, options.repeat + 1):
            tag = f"{repeat}-{random.randrange(16**6):06x}"
            anchor = run_anchor(options, tag)
            anchors.append(anchor)
            say(
                f"run {repeat}: anchor (bare aiohttp, signature only): {anchor.rate:.0f}/s, "
                f"answer p50 {anchor.answer_p50_ms:.2f} / p99 {anchor.answer_p99_ms:.2f} ms, "
                f"{anchor.cpu_ms:.3f} CPU ms/request"
            )
            result = run_webhooks(
                options, env, port, service, worker, client, db, fake, tag, others
            )
            figures.append(result)
            say(
                f"run {repeat}: kyc-poller: {result.rate:.0f}/s, {result.events}/{result.accepted}"
                f" events, webhook->stream p50 {result.latency_p50 * 1000:.0f} / p95 "
                f"{result.latency_p95 * 1000:.0f} / p99 {result.latency_p99 * 1000:.0f} ms, "
                f"answer p50 {result.answer_p50_ms:.2f} / p99 {result.answer_p99_ms:.2f} ms, "
                f"CPU ms/webhook "
                f"service {result.service_cpu_ms:.3f} worker {result.worker_cpu_ms:.3f}, "
                f"{result.errors} not 202; machine {result.machine_busy:.0%} busy, "
                f"{result.ours_busy:.0%} by the benchmark's processes"
            )
        if options.hostile:
            run_hostile(options, env, workdir, db, fake, worker)
    return figures, anchors


def report(options: Options, figures: list[RunFigures], anchors: list[AnchorRun]) -> None:
    def med(values: Sequence[float]) -> float:
        found = median(list(values))
        return math.nan if found is None else found

    service_cpu = med([f.service_cpu_ms for f in figures])
    anchor_cpu = med([a.cpu_ms for a in anchors])
    answer = med([f.answer_p99_ms for f in figures])
    anchor_answer = med([a.answer_p99_ms for a in anchors])
    p99 = med([f.latency_p99 for f in figures])
    say("")
    say(
        f"medians of {len(figures)} run(s), {options.rate:g} webhooks/s for {options.seconds:g} s, "
        f"{options.database}, provider latency {options.latency_ms:g} ms:"
    )
    say(
        "  | | rate/s | answer p50 / p99 ms | CPU ms/request | webhook->stream p50 / p95 / p99 ms |"
    )
    say(
        f"  | anchor: bare aiohttp, signature only | {med([a.rate for a in anchors]):.0f} | "
        f"{med([a.answer_p50_ms for a in anchors]):.2f} / {anchor_answer:.2f} | "
        f"{anchor_cpu:.3f} | |"
    )
    say(
        f"  | kyc-poller service (+ worker) | {med([f.rate for f in figures]):.0f} | "
        f"{med([f.answer_p50_ms for f in figures]):.2f} / {answer:.2f} | {service_cpu:.3f} "
        f"(+ {med([f.worker_cpu_ms for f in figures]):.3f}) | "
        f"{med([f.latency_p50 for f in figures]) * 1000:.0f} / "
        f"{med([f.latency_p95 for f in figures]) * 1000:.0f} / {p99 * 1000:.0f} |"
    )
    say(
        f"  ratios service / anchor: CPU {service_cpu / anchor_cpu:.2f}x, answer p99 "
        f"{answer / anchor_answer:.2f}x"
    )
    verdict = (
        "PASS" if p99 <= 1.0 and med([f.rate for f in figures]) >= options.rate * 0.95 else "FAIL"
    )
    say(
        f"  goal: event on the stream p99 <= 1 s at {options.rate:g}/s: {verdict} (p99 {p99:.3f} s)"
    )
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    say(f"  ({started}; {os.cpu_count()} cores, shared: compare ratios)")


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    workdir = Path(tempfile.mkdtemp(prefix="kyc-bench-webhooks-"))
    try:
        figures, anchors = run(options, workdir)
    except SetupError as exc:
        print(f"bench_webhooks: setup failed: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(options, figures, anchors)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
