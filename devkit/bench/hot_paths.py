"""Prints throughput figures for the hot paths, in one process: claims, poll batches, relay.

Not a test: it asserts nothing, it measures. Run with the project's venv:
    .venv/bin/python scripts/benchmark.py [--database-url URL] [--verifications N]
Defaults use a temporary SQLite file, the fake providers (in this process) and an
embedded redis-server. The poll engine, store and relay are the worker's own
(`worker.runtime.Runtime`), without Celery; rate limits are off. For the whole
pipeline (worker and beat processes, a provider with latency) see
scripts/bench_fleet.py; for the sweep against table size, scripts/bench_sweep.py.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from devkit.embedded_redis import EmbeddedRedis
from devkit.fake_providers.server import FakeProviders
from models import utcnow
from models.db import Database
from worker.adapters.logs import configure_logging
from worker.config import Settings
from worker.entrypoints.migrate import upgrade
from worker.runtime import Runtime
from worker.services.tracking import insert_verification_if_absent

PROVIDER_SCRIPTS = {
    "notus": ["PENDING", "APPROVED"],
    "gu1": ["pending", "approved"],
    "bank131": ["pending", "ok"],
    "predicate": ["pending", "completed"],
}


def _external_id(provider: str, n: int, run: int) -> str:
    if provider == "predicate":
        return f"{run:08x}-0000-4000-8000-{n:012d}"
    if provider == "bank131":
        return f"{run}{n:08d}"
    return f"bench-{run}-{n}"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--verifications", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=100, help="ids per poll_batch call")
    args = parser.parse_args()
    configure_logging("console", "WARNING")  # figures only, not one line per event

    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    upgrade(url)
    db = Database(url)
    run = random.randrange(16**6)
    count = args.verifications
    print(f"database: {db.dialect}; verifications: {count}; poll batches of {args.batch_size}")

    with FakeProviders() as fake, EmbeddedRedis() as server:
        env = {
            **fake.provider_env(),
            "KYC_DATABASE_URL": url,
            "KYC_REDIS_URL": server.url,
            "KYC_EVENTS_CHANNEL": "bench.events",
            **{f"{provider.upper()}_RATE_LIMIT": "0" for provider in PROVIDER_SCRIPTS},
        }
        runtime = Runtime(Settings.from_env(env))
        started = time.perf_counter()
        with db.session() as session, session.begin():
            now = utcnow()
            for n in range(count):
                provider = list(PROVIDER_SCRIPTS)[n % 4]
                external_id = _external_id(provider, n, run)
                fake.add_session(provider, external_id, PROVIDER_SCRIPTS[provider])
                insert_verification_if_absent(
                    session,
                    provider=provider,
                    external_id=external_id,
                    verification_type="individual" if provider == "predicate" else None,
                    now=now - timedelta(seconds=1),
                )
        print(f"track:  {count / (time.perf_counter() - started):8.0f} inserts/s")

        started = time.perf_counter()
        claimed: list[int] = []
        for provider in PROVIDER_SCRIPTS:
            while batch := runtime.store.claim_due(
                provider, now=utcnow(), limit=500, lease_seconds=60
            ):
                claimed.extend(batch)
        elapsed = time.perf_counter() - started
        print(f"claim:  {len(claimed) / elapsed:8.0f} claims/s ({len(claimed)} in claims of 500)")

        for label in ("poll (unchanged)", "poll (transition)"):
            outcomes: Counter[str] = Counter()
            started = time.perf_counter()
            for start in range(0, len(claimed), args.batch_size):
                report = runtime.engine.poll_batch(claimed[start : start + args.batch_size])
                outcomes.update(report.outcomes)
            elapsed = time.perf_counter() - started
            counts = {str(outcome): n for outcome, n in sorted(outcomes.items())}
            print(f"{label + ':':<19}{len(claimed) / elapsed:8.0f} polls/s {counts}")

        started = time.perf_counter()
        relayed = runtime.relay.relay_all(max_batches=10_000)
        elapsed = time.perf_counter() - started
        print(f"relay:  {relayed.published / elapsed:8.0f} events/s ({relayed.published} events)")
        runtime.close()
    db.dispose()
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
