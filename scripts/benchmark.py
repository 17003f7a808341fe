#!/usr/bin/env python3
"""Prints throughput figures for the hot paths: scheduler claims, polls over HTTP, event relay.

Not a test: it asserts nothing, it measures. Run with the project's venv:
    .venv/bin/python scripts/benchmark.py [--database-url URL] [--verifications N]
Defaults use a temporary SQLite file, the fake providers and an embedded redis-server.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import redis

from devkit.embedded_redis import EmbeddedRedis
from devkit.fake_providers.server import FakeProviders
from models import utcnow
from models.db import Database
from worker.adapters import build_adapters
from worker.adapters.http import ProviderHttp, create_http_session
from worker.config import Settings
from worker.logging_setup import configure_logging
from worker.migrate import upgrade
from worker.services.polling import Poller
from worker.services.relay import OutboxRelay
from worker.services.scheduling import claim_due_verifications
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
    return f"bench-{run}-{n}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--verifications", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    configure_logging("console", "WARNING")  # figures only, not one line per event

    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    upgrade(url)
    db = Database(url)
    run = random.randrange(16**8)
    count = args.verifications
    print(f"database: {db.dialect}; verifications: {count}; poll threads: {args.threads}")

    with FakeProviders() as fake, EmbeddedRedis() as server:
        settings = Settings.from_env(fake.provider_env())
        keys = []
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
                keys.append((provider, external_id))
        print(f"track:  {count / (time.perf_counter() - started):8.0f} inserts/s")

        started = time.perf_counter()
        claimed: list[int] = []
        while batch := claim_due_verifications(db, now=utcnow(), limit=500, lease_seconds=60):
            claimed.extend(batch)
        elapsed = time.perf_counter() - started
        print(f"claim:  {len(claimed) / elapsed:8.0f} claims/s ({len(claimed)} in batches of 500)")

        http = ProviderHttp(create_http_session(), connect_timeout=2, read_timeout=5)
        poller = Poller(db, build_adapters(settings, http), settings)
        for label in ("poll (unchanged)", "poll (transition)"):
            started = time.perf_counter()
            with ThreadPoolExecutor(args.threads) as pool:
                outcomes = list(pool.map(poller.poll, claimed))
            elapsed = time.perf_counter() - started
            actions = {
                a: sum(o.action == a for o in outcomes) for a in {o.action for o in outcomes}
            }
            print(f"{label + ':':<19}{len(claimed) / elapsed:8.0f} polls/s {actions}")

        client = redis.Redis.from_url(server.url)
        relay = OutboxRelay(db, client, "bench.events", dedupe_ttl=600)
        started = time.perf_counter()
        report = relay.relay_all(max_batches=10_000)
        elapsed = time.perf_counter() - started
        print(f"relay:  {report.published / elapsed:8.0f} events/s ({report.published} events)")
    db.dispose()
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
