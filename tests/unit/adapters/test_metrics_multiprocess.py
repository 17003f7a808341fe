"""Multiprocess mode as a prefork worker uses it: forked children count, the parent serves.

Runs in a fresh interpreter: prometheus_client picks multiprocess mode when it is first
imported, which in this test process has long happened.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    """
    import multiprocessing
    import sys
    import urllib.request

    from worker.adapters import metrics

    directory = metrics.prepare_multiprocess_dir(sys.argv[1])
    assert not metrics.multiprocess_dir() is None


    def child(published):
        metrics.count_relayed(metrics.RELAY_AFTER_POLL, published)
        metrics.count_tracking("gu1", "created")
        metrics.instruments().provider_call_duration.labels("gu1").observe(0.2)


    fork = multiprocessing.get_context("fork")
    children = [fork.Process(target=child, args=(n,)) for n in (2, 3)]
    for process in children:
        process.start()
    for process in children:
        process.join()
        assert process.exitcode == 0
        metrics.mark_process_dead(process.pid)
    assert metrics.multiprocess_active()

    server = metrics.start_metrics_server(0, "127.0.0.1")
    assert server is not None
    taken = metrics.start_metrics_server(server.port, "127.0.0.1")
    assert taken is None, "a port in use is logged, not fatal"
    url = f"http://127.0.0.1:{server.port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        open(sys.argv[2], "wb").write(response.read())
    server.stop()
    """
)


def test_children_count_and_the_parent_serves_the_sum(tmp_path):
    directory, scraped = tmp_path / "metrics", tmp_path / "scraped.txt"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(directory), str(scraped)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(scraped.read_text())
        for sample in family.samples
    }
    assert samples[("kyc_poller_events_published_total", (("relay", "after_poll"),))] == 5
    tracking = ("kyc_poller_tracking_requests_total", (("provider", "gu1"), ("result", "created")))
    assert samples[tracking] == 2
    count = ("kyc_poller_provider_call_duration_seconds_count", (("provider", "gu1"),))
    assert samples[count] == 2
    # The directory belonged to that process group: gone when it exited.
    assert list(directory.iterdir()) == []
