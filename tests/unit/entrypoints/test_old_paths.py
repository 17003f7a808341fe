"""The import paths and `python -m` commands of before the layout change keep working for
one release, as thin re-exports of the new homes."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_old_modules_re_export_the_new_homes():
    from worker import cli, client, health, logging_setup, metrics, migrate, subscriber
    from worker.adapters import logs
    from worker.adapters import metrics as new_metrics
    from worker.api import client as new_client
    from worker.api import events as new_events
    from worker.entrypoints import cli as new_cli
    from worker.entrypoints import health as new_health
    from worker.entrypoints import migrate as new_migrate

    assert cli.main is new_cli.main
    assert client.KycClient is new_client.KycClient
    assert subscriber.GroupConsumer is new_events.GroupConsumer
    assert subscriber.main is new_cli.kyc_events_main
    assert health.main is new_health.main
    assert migrate.upgrade is new_migrate.upgrade
    assert metrics.FleetCollector is new_metrics.FleetCollector
    assert logging_setup.configure_logging is logs.configure_logging


@pytest.mark.parametrize(
    ("module", "usage"),
    [
        ("worker.cli", "Usage: kyc-poller"),
        ("worker.entrypoints.cli", "Usage: kyc-poller"),
        ("worker.subscriber", "Usage: kyc-events"),
        ("worker.health", "usage: python -m worker.health"),
        ("worker.entrypoints.health", "usage: python -m worker.health"),
    ],
)
def test_python_dash_m_still_runs(module, usage):
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert usage in done.stdout
