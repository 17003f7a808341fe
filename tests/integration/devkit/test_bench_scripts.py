"""The benchmarks (devkit.bench, run through their thin scripts) still run against the code.

They import and call the product (tracking, the sweep's claim, the fleet's
start functions), so a changed signature should fail here, not on the next
benchmark run. The fleet benchmark itself (worker and beat processes, tens of
seconds) is not run: its parts that need no fleet are.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devkit.bench import anchors, fleet, processes

ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = ROOT / "scripts"


def run_script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    "script",
    [
        "bench_fleet.py",
        "bench_sweep.py",
        "benchmark.py",
        "bench_webhooks.py",
        "bench_signatures.py",
    ],
)
def test_benchmark_scripts_import_and_explain_themselves(script):
    result = run_script(script, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_bench_sweep_measures_a_small_sqlite_table():
    result = run_script(
        "bench_sweep.py",
        *("--database", "sqlite", "--sizes", "3k", "--due", "300", "--limit", "100"),
        *("--rounds", "2", "--empty-runs", "3"),
    )
    assert result.returncode == 0, result.stderr
    assert "ms/claim 100" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("sqlite ")]
    assert ["sqlite", "3k"] in [row[:2] for row in rows]  # the summary table's row
    assert "claim of 100" in result.stdout
    assert "(6 claims, 300 due)" in result.stdout  # 3 full claims per round, 2 rounds


def test_bench_signatures_prints_each_figure_next_to_its_anchor():
    result = run_script("bench_signatures.py", "--events", "20", "--repeat", "1")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith(("anchor", "sign"))]
    assert len(rows) == 2
    assert rows[0].split()[-2] == "1.0"  # the anchor's own ratio


def test_bench_sweep_on_postgres(postgres_server):
    result = run_script(
        "bench_sweep.py",
        *("--database", "postgres", "--postgres-url", postgres_server.url),
        *("--sizes", "2k", "--due", "200", "--limit", "100", "--rounds", "1", "--empty-runs", "2"),
    )
    assert result.returncode == 0, result.stderr
    assert "(2 claims, 200 due)" in result.stdout


def test_bench_fleet_anchor_against_its_own_fake_server(tmp_path):
    fake = anchors.FakeServer(latency_ms=50, jitter_ms=0, log_dir=tmp_path)
    try:
        ids = [f"anchor-{n}" for n in range(20)]
        fake.add_sessions(ids, fleet.UNCHANGED_SCRIPT, loop=False)
        assert fake.env["NOTUS_BASE_URL"] == f"{fake.url}/notus"
        figures = anchors.anchor_threads(fake, ids, threads=4, seconds=1.0)
        assert figures.errors == 0
        # 4 requests in flight, each at least 50 ms: at most 80 a second.
        assert 0 < figures.requests_per_second <= 80
        assert figures.cpu_ms_per_request > 0
        assert fake.health_problem() == ""
    finally:
        fake.stop()
    assert fake.proc.returncode is not None


def test_bench_fleet_helpers():
    assert processes.percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert processes.percentile([1.0] * 99 + [100.0], 0.99) == 1.0
    assert processes.median([None, 1.0, 3.0]) == 2.0
    assert processes.median([None]) is None
    assert processes.tree_cpu([1 << 30]) == 0.0  # no such process
    options = fleet.parse_options(["--database", "sqlite", "--env", "KYC_POLL_BATCH_SIZE=7"])
    assert options.databases == ("sqlite",)
    assert options.workloads == ("unchanged", "transition")
    assert options.extra_env == {"KYC_POLL_BATCH_SIZE": "7"}
    mixed = fleet.parse_options(["--workload", "mixed", "--unchanged", "20", "--changing", "3"])
    assert mixed.workloads == ("mixed",) and (mixed.unchanged, mixed.changing) == (20, 3)
    assert fleet.parse_options(["--workload", "all"]).workloads == fleet.WORKLOADS
    with pytest.raises(SystemExit):
        fleet.parse_options(["--unchanged", "0", "--changing", "0"])
    assert options.variants == (("", {}),)
    compared = fleet.parse_options(["--variant", "old:A=1,B=2", "--variant", "new:"])
    assert compared.variants == (("old", {"A": "1", "B": "2"}), ("new", {}))
    for bad in (["--variant", "noname"], ["--variant", "a:", "--variant", "a:B=1"]):
        with pytest.raises(SystemExit):
            fleet.parse_options(bad)


def test_the_webhook_benchmark_signs_as_gu1_documents():
    from devkit.bench import webhooks
    from models import utcnow
    from worker.adapters.gu1 import Gu1Adapter
    from worker.domain.webhooks import read_webhook

    body = webhooks.gu1_webhook("val-1")
    hint = read_webhook(
        Gu1Adapter.webhook,
        webhooks.SECRET.encode(),
        {"x-webhook-signature": webhooks.sign(body)},
        body,
        now=utcnow(),
        max_depth=32,
        window_seconds=300,
    )
    assert hint.external_ids == ("val-1",)
    groups = webhooks.hostile_bodies("val-1", 3)
    assert len(groups["flood"]) == 3 and len({b for _, b, _ in groups["flood"]}) == 3
