"""`import worker.api` is cheap for an app: no provider adapter, no aiohttp, no cryptography
machinery, no Celery, no fleet settings. A fresh interpreter shows what an import loads."""

from __future__ import annotations

import json
import subprocess
import sys

# Module prefixes an app's import of worker.api must not load. (redis-py imports the
# `cryptography` package itself to learn whether it is installed, but none of its
# primitives: `cryptography.hazmat` is the machinery.)
FORBIDDEN = (
    "aiohttp",
    "cryptography.hazmat",
    "celery",
    "kombu",
    "billiard",
    "sqlalchemy",
    "prometheus_client",
    "worker.adapters",
    "worker.services",
    "worker.config",
    "worker.runtime",
    "tasks",
    "models",
)


def loaded_by(statement: str) -> list[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(done.stdout)


def forbidden_in(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in FORBIDDEN)]


def test_importing_the_app_api_loads_none_of_the_fleet():
    modules = loaded_by("import worker.api; from worker.api import KycClient, GroupConsumer")
    assert "worker.api" in modules and "redis" in modules
    assert forbidden_in(modules) == []


def test_the_check_can_fail_the_fleet_loads_what_apps_must_not():
    # The same probe on the fleet's composition root finds the machinery: the test above
    # is not passing because the probe sees nothing.
    modules = loaded_by("import worker.runtime")
    found = forbidden_in(modules)
    assert any(m.startswith("worker.adapters") for m in found)
    assert any(m.startswith("sqlalchemy") for m in found)
