"""Prints what signing and verifying an event costs, next to what the relay already spends on it.

Not a test: it asserts nothing, it measures. Run with the project's venv:
    .venv/bin/python scripts/bench_signatures.py [--events 20000] [--repeat 5]

Anchor, measured in the same run: `json.dumps` of the event as the relay
serializes it today (sorted keys, compact). Each figure is µs per event, the
median of `--repeat` runs, with its ratio to the anchor; compare ratios (the
machine is shared).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from worker.domain.signatures import (
    EventSigner,
    EventVerifier,
    canonical_bytes,
    generate_key_pair,
)

EVENT = {
    "event_id": "1b0c5f0e-7a55-4d53-9a8f-5f1f3d0b8e6a",
    "event_type": "verification.status_changed",
    "schema_version": 1,
    "verification_id": 42,
    "verification_version": 5,
    "provider": "gu1",
    "external_id": "val-123",
    "verification_type": None,
    "from_status": "in_review",
    "to_status": "approved",
    "terminal": True,
    "provider_status": "approved",
    "reason": "provider",
    "error_code": None,
    "related_external_id": None,
    "occurred_at": "2026-11-23T12:00:00.123456+00:00",
}


def per_event_us(work: Callable[[], object], events: int, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(events):
            work()
        runs.append((time.perf_counter() - started) / events * 1e6)
    return statistics.median(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    pair = generate_key_pair("bench")
    signer = EventSigner.from_text(pair.private_key, pair.key_id)
    verifier = EventVerifier.from_text(pair.ring_entry)
    signed = signer.sign(EVENT)
    message = json.dumps(signed, sort_keys=True, separators=(",", ":"))
    assert verifier.verify_message(message)[0].valid

    rows = [
        ("anchor: json.dumps (the relay today)", lambda: json.dumps(EVENT, sort_keys=True)),
        ("canonical bytes (RFC 8785)", lambda: canonical_bytes(EVENT)),
        ("sign (canonical bytes + Ed25519)", lambda: signer.sign(EVENT)),
        ("verify (parse + canonical + Ed25519)", lambda: verifier.verify_message(message)),
    ]
    figures = [(name, per_event_us(work, args.events, args.repeat)) for name, work in rows]
    anchor = figures[0][1]
    print(f"{args.events} events x {args.repeat} runs, median µs per event")
    print(f"{'':50} {'µs/event':>9} {'÷ anchor':>9} {'events/s/core':>14}")
    for name, us in figures:
        print(f"{name:50} {us:9.1f} {us / anchor:9.1f} {1e6 / us:14,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
