"""The benchmarks, as importable modules (`scripts/*.py` are thin wrappers around their `main`).

- `fleet`: the real pipeline (worker, control worker, beat, Redis, PostgreSQL/SQLite) against
  a slow fake provider, next to bare HTTP clients (`anchors`) against the same server;
- `sweep`: the sweep's claim on tables of 10k to 1M rows, and sending one full sweep;
- `hot_paths`: the hot paths timed in one process (tracking, claims, polls, relay).

They print figures and assert nothing.
"""
