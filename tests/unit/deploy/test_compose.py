"""docker-compose.yml: valid against the Compose Specification schema, and wired correctly.

There is no Docker engine (or `docker compose`) where the tests run, so the file is checked
against the vendored compose-spec JSON schema (tests/data/README.md) plus the facts the
stack depends on: start order, and every process getting the full configuration.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from devkit.local_fleet import (
    CONTROL_WORKER_ARGS,
    INTAKE_WORKER_ARGS,
    POLL_WORKER_ARGS,
    POLL_WORKER_CONCURRENCY,
)
from tests.support.services import unavailable
from worker.adapters.registry import PROVIDER_NAMES, build_adapters
from worker.config import Settings
from worker.domain.signatures import generate_key_pair

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA_FILE = ROOT / "tests" / "data" / "compose-spec.json"

SERVICES = {
    "postgres",
    "redis",
    "migrate",
    "fake-providers",
    "worker",
    "control",
    "intake",
    "beat",
    "ingress",
}
# Only with `docker compose --profile monitoring up`.
MONITORING_SERVICES = {"prometheus", "grafana"}
PRODUCT_SERVICES = {"migrate", "worker", "control", "intake", "beat", "ingress"}
APP_SERVICES = {*PRODUCT_SERVICES, "fake-providers"}
PROVIDER_ENV = {
    "NOTUS_BASE_URL": "http://fake-providers:8080/notus",
    "NOTUS_API_KEY": "notus-test-key",
    "BANK131_BASE_URL": "http://fake-providers:8080/bank131",
    "BANK131_PROJECT": "kyc-poller",
    "BANK131_SIGNING_MODE": "none",
    "GU1_BASE_URL": "http://fake-providers:8080/gu1",
    "GU1_API_KEY": "gu1-test-key",
    "PREDICATE_BASE_URL": "http://fake-providers:8080/predicate",
    "PREDICATE_API_KEY": "predicate-test-key",
    # The fakes speak plain http on the compose network: allowed explicitly, per provider.
    "NOTUS_ALLOW_INSECURE_HTTP": "true",
    "BANK131_ALLOW_INSECURE_HTTP": "true",
    "GU1_ALLOW_INSECURE_HTTP": "true",
    "PREDICATE_ALLOW_INSECURE_HTTP": "true",
}
REQUIRED = "run scripts/compose-env > .env"
COMMON_ENV = {"KYC_LOG_FORMAT": "json", "KYC_METRICS_ADDR": "0.0.0.0", **PROVIDER_ENV}
KYC_ENV = {
    **COMMON_ENV,
    "KYC_DATABASE_URL": "postgresql+psycopg://kyc_worker:${KYC_DB_WORKER_PASSWORD:?"
    + REQUIRED
    + "}@postgres:5432/kyc",
    "KYC_REDIS_URL": "redis://worker:${KYC_REDIS_WORKER_PASSWORD:?" + REQUIRED + "}@redis:6379/0",
    "KYC_EVENT_SIGNING_KEY": "${KYC_EVENT_SIGNING_KEY:?" + REQUIRED + "}",
    "KYC_EVENT_SIGNING_KEY_ID": "${KYC_EVENT_SIGNING_KEY_ID:?" + REQUIRED + "}",
}
# The fleet's processes: the signing key, the runtime role, the worker Redis user.
FLEET_SERVICES = {"worker", "control", "intake", "beat"}


def dot_env() -> dict[str, str]:
    """What scripts/compose-env writes (values made up here)."""
    pair = generate_key_pair("2026-12")
    names = [
        "POSTGRES_PASSWORD",
        "KYC_DB_OWNER_PASSWORD",
        "KYC_DB_WORKER_PASSWORD",
        "KYC_DB_APP_PASSWORD",
        "KYC_REDIS_WORKER_PASSWORD",
        "KYC_REDIS_APP_PASSWORD",
        "KYC_REDIS_SUBSCRIBER_PASSWORD",
        "KYC_REDIS_OPERATOR_PASSWORD",
    ]
    values = {name: f"{name.lower()}-0123456789abcdef" for name in names}
    values.update(KYC_EVENT_SIGNING_KEY=pair.private_key, KYC_EVENT_SIGNING_KEY_ID=pair.key_id)
    return values


_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::\?[^}]*|-[^}]*)?\}")


def interpolate(env: dict[str, str], values: dict[str, str]) -> dict[str, str]:
    """Compose's `${NAME:?message}` / `${NAME-}` filled in as compose would from `.env`."""
    return {
        key: _VARIABLE.sub(lambda m: values.get(m["name"], ""), value) for key, value in env.items()
    }


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def validator():
    try:
        import jsonschema
    except ImportError:
        unavailable("jsonschema is not installed (pip install jsonschema)")
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft201909Validator.check_schema(schema)
    # No format checker: compose durations ("2s") are Go durations, not ISO 8601.
    return jsonschema.Draft201909Validator(schema)


def schema_errors(validator, document) -> list[str]:
    return [
        f"{error.json_path}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: e.json_path)
    ]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def test_compose_file_is_valid_against_the_compose_spec(compose, validator):
    assert schema_errors(validator, compose) == []


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param(lambda d: d["services"]["worker"].update(dependson={}), id="unknown-key"),
        pytest.param(
            lambda d: d["services"]["beat"]["depends_on"]["migrate"].update(condition="done"),
            id="bad-condition",
        ),
        pytest.param(lambda d: d["services"]["migrate"].update(restart=False), id="unquoted-no"),
        pytest.param(
            lambda d: d["services"]["redis"]["healthcheck"].update(retry=3), id="healthcheck-key"
        ),
    ],
)
def test_the_schema_check_is_not_vacuous(compose, validator, breakage):
    broken = copy.deepcopy(compose)
    breakage(broken)
    assert schema_errors(validator, broken)


def test_the_eight_services(compose):
    services = compose["services"]
    assert {name for name, service in services.items() if "profiles" not in service} == SERVICES
    assert set(services) == SERVICES | MONITORING_SERVICES


def test_infrastructure_images_and_healthchecks(compose):
    postgres, redis = compose["services"]["postgres"], compose["services"]["redis"]
    assert postgres["image"] == "postgres:15"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert redis["image"] == "redis:7"
    # The default user is off: the health check logs in as the operator.
    check = " ".join(redis["healthcheck"]["test"])
    assert "redis-cli --user operator" in check and check.endswith("ping")


def test_no_credential_has_a_default_and_each_process_gets_only_its_own(compose):
    services = compose["services"]
    for name in ("postgres", "redis"):
        for key, value in environment(services[name]).items():
            if "PASSWORD" in key:
                assert value.startswith("${") and ":?" in value, (name, key)
    assert environment(services["postgres"])["POSTGRES_PASSWORD"] != "kyc"
    assert "./deploy/postgres:/docker-entrypoint-initdb.d:ro" in services["postgres"]["volumes"]
    assert "aclfile" in " ".join(services["redis"]["command"])
    # Only the fleet signs; migrations are the owner; the internet-facing service has no key.
    for name in FLEET_SERVICES:
        assert "KYC_EVENT_SIGNING_KEY" in environment(services[name]), name
    migrate = interpolate(environment(services["migrate"]), dot_env())
    assert urlsplit(migrate["KYC_DATABASE_URL"]).username == "kyc_owner"
    assert "KYC_REDIS_URL" not in migrate and "KYC_EVENT_SIGNING_KEY" not in migrate
    ingress = interpolate(environment(services["ingress"]), dot_env())
    assert urlsplit(ingress["KYC_DATABASE_URL"]).username == "kyc_worker"
    assert "KYC_EVENT_SIGNING_KEY" not in ingress
    assert environment(services["fake-providers"]) == COMMON_ENV


def test_app_services_build_the_project_image(compose):
    for name in PRODUCT_SERVICES:
        service = compose["services"][name]
        assert service["build"] == ".", name
        assert service["image"] == compose["services"]["worker"]["image"], name


def test_fake_providers_come_from_the_dev_image_only(compose):
    fakes = compose["services"]["fake-providers"]
    assert fakes["build"] == {"context": ".", "target": "dev"}
    assert fakes["image"] != compose["services"]["worker"]["image"]


def test_commands(compose):
    services = compose["services"]
    assert services["migrate"]["command"] == ["python", "-m", "worker.entrypoints.migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["fake-providers"]["command"] == [
        "kyc-fake-providers",
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
    ]
    # The same arguments the devkit's local fleet (demo, e2e tests, benchmark) runs.
    assert services["worker"]["command"] == [
        "celery",
        "-A",
        "tasks.app",
        *POLL_WORKER_ARGS,
        f"--concurrency={POLL_WORKER_CONCURRENCY}",
    ]
    assert services["control"]["command"] == ["celery", "-A", "tasks.app", *CONTROL_WORKER_ARGS]
    assert services["intake"]["command"] == ["celery", "-A", "tasks.app", *INTAKE_WORKER_ARGS]
    assert services["beat"]["command"] == [
        "celery",
        "-A",
        "tasks.app",
        "beat",
        "--loglevel=INFO",
        "--schedule=/tmp/celerybeat-schedule",
    ]


@pytest.mark.parametrize("name", ["worker", "control", "intake", "beat", "ingress"])
def test_worker_and_beat_start_after_migration_and_healthy_backends(compose, name):
    depends = compose["services"][name]["depends_on"]
    assert depends["migrate"] == {"condition": "service_completed_successfully"}
    assert depends["postgres"] == {"condition": "service_healthy"}
    assert depends["redis"] == {"condition": "service_healthy"}


def test_every_dependency_is_a_defined_service(compose):
    """The schema cannot see cross-references; a typo here only fails at `docker compose up`."""
    services = compose["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on undefined {dependency!r}"
            assert dependency != name, name


def test_credentials_are_the_ones_the_fake_providers_accept(compose):
    from devkit.fake_providers.credentials import FakeCredentials

    fake = FakeCredentials()
    env = environment(compose["services"]["worker"])
    assert env["NOTUS_API_KEY"] == fake.notus_api_key
    assert env["BANK131_PROJECT"] == fake.bank131_project
    assert env["BANK131_SIGNING_MODE"] == fake.bank131_signing_mode
    assert env["GU1_API_KEY"] == fake.gu1_api_key
    assert env["PREDICATE_API_KEY"] == fake.predicate_api_key


def test_migration_waits_for_a_healthy_database(compose):
    depends = compose["services"]["migrate"]["depends_on"]
    assert depends["postgres"] == {"condition": "service_healthy"}


def test_shared_environment_extension_field(compose):
    assert compose["x-kyc-common-env"] == COMMON_ENV
    assert compose["x-kyc-env"] == KYC_ENV
    for name in FLEET_SERVICES:
        assert environment(compose["services"][name]) == KYC_ENV, name


@pytest.mark.parametrize("name", ["worker", "beat"])
def test_worker_and_beat_have_every_provider_configured(compose, name):
    env = interpolate(environment(compose["services"][name]), dot_env())
    assert {key: env.get(key) for key in PROVIDER_ENV} == PROVIDER_ENV
    settings = Settings.from_env(env)
    assert set(build_adapters(settings.providers)) == set(PROVIDER_NAMES)
    assert settings.event_signer is not None and settings.event_signer.key_id == "2026-12"


def test_urls_point_at_the_compose_services(compose):
    services = compose["services"]
    values = dot_env()
    env = interpolate(environment(services["worker"]), values)
    database = urlsplit(env["KYC_DATABASE_URL"])
    pg_env = interpolate(environment(services["postgres"]), values)
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert (database.username, database.password) == (
        "kyc_worker",
        pg_env["KYC_DB_WORKER_PASSWORD"],
    )
    assert database.path.lstrip("/") == pg_env["POSTGRES_DB"]
    broker = urlsplit(env["KYC_REDIS_URL"])
    redis_env = interpolate(environment(services["redis"]), values)
    assert (broker.hostname, broker.username) == ("redis", "worker")
    assert broker.password == redis_env["KYC_REDIS_WORKER_PASSWORD"]
    fake_port = services["fake-providers"]["command"][-1]
    for key in PROVIDER_ENV:
        if key.endswith("_BASE_URL"):
            url = urlsplit(env[key])
            assert (url.hostname, str(url.port)) == ("fake-providers", fake_port), key


def test_dockerfile_installs_the_project_and_runs_unprivileged():
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "FROM python:3.11-slim AS runtime"
    stages = stages_of(lines)
    assert list(stages) == ["runtime", "dev", ""]
    assert any(line.startswith("RUN pip install .") for line in stages["runtime"])
    assert not any("devkit" in line for line in stages["runtime"])
    assert any("devkit" in line for line in stages["dev"])
    assert lines[-1] == "FROM runtime", "a plain `docker build .` must give the product image"
    for name in ("runtime", "dev"):
        users = [line.split()[1] for line in stages[name] if line.startswith("USER ")]
        assert users and users[-1] not in {"root", "0"}, name


def stages_of(lines: list[str]) -> dict[str, list[str]]:
    """Dockerfile lines by stage name ("" for an unnamed stage)."""
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in lines:
        if line.startswith("FROM "):
            words = line.split()
            current = stages.setdefault(words[3] if len(words) > 3 else "", [])
        current.append(line)
    return stages


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", "var", "**/__pycache__", ".pytest_cache", ".ruff_cache"} <= ignored


def test_docker_compose_itself_accepts_the_file_when_installed():
    """A second, independent opinion where Debian's docker-compose is installed (optional)."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose not installed (optional: apt-get install docker-compose)")
    result = subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_redis_persists_what_it_queues(compose):
    redis = compose["services"]["redis"]
    command = " ".join(redis["command"]).split()
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] in {"everysec", "always"}
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    assert "redisdata" in compose["volumes"]


@pytest.mark.parametrize("name", ["worker", "control", "intake", "beat"])
def test_worker_control_and_beat_are_health_checked(compose, name):
    import worker.entrypoints.health

    check = compose["services"][name]["healthcheck"]
    assert check["test"][:4] == ["CMD", "python", "-m", "worker.entrypoints.health"]
    assert callable(worker.entrypoints.health.main)
    # The command's own timeout ends it well before compose gives up on it.
    timeout = next(arg for arg in check["test"] if arg.startswith("--timeout="))
    assert float(timeout.split("=")[1]) + 2 < int(check["timeout"].rstrip("s"))
    assert check["retries"] >= 2 and "start_period" in check


def test_monitoring_is_a_profile_of_its_own(compose):
    services = compose["services"]
    for name in MONITORING_SERVICES:
        assert services[name]["profiles"] == ["monitoring"], name
    assert services["prometheus"]["image"].startswith("prom/prometheus:v")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    assert "prometheus" in services["grafana"]["depends_on"]


def test_monitoring_mounts_the_files_in_deploy(compose):
    services = compose["services"]
    mounts = {
        target: source
        for name in MONITORING_SERVICES
        for source, target, *_ in (volume.split(":") for volume in services[name]["volumes"])
    }
    assert mounts["/etc/prometheus"] == "./deploy/prometheus"
    assert (ROOT / "deploy/prometheus/prometheus.yml").is_file()
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    dashboards = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/kyc-poller.yml").read_text()
    )
    path = dashboards["providers"][0]["options"]["path"]
    assert mounts[path] == "./deploy/grafana/dashboards"
    home = environment(services["grafana"])["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(path + "/")
    assert (ROOT / "deploy/grafana/dashboards" / home.removeprefix(path + "/")).is_file()
    assert "prometheusdata" in compose["volumes"]


def test_monitoring_listens_on_the_hosts_loopback_and_grafana_reaches_no_data(compose):
    services = compose["services"]
    for name in ("prometheus", "grafana"):
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"]), name
    grafana = services["grafana"]
    assert grafana["networks"] == ["monitoring"]  # not the network of PostgreSQL and Redis
    assert set(services["prometheus"]["networks"]) == {"default", "monitoring"}
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD-}"
    # No password, no Grafana: its entrypoint refuses to start.
    assert "GF_SECURITY_ADMIN_PASSWORD" in " ".join(grafana["entrypoint"])


def test_the_http_service_is_served_health_checked_and_published_on_loopback(compose):
    from worker.entrypoints.cli import cli

    ingress = compose["services"]["ingress"]
    command = ingress["command"]
    assert command[:2] == ["kyc-poller", "serve"] and "serve" in cli.commands
    port = command[command.index("--port") + 1]
    assert command[command.index("--host") + 1] == "0.0.0.0"  # inside its container
    assert ingress["ports"] == [f"127.0.0.1:{port}:{port}"]  # the host: loopback only
    check = " ".join(ingress["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/healthz" in check
    assert ingress["healthcheck"]["retries"] >= 2 and "start_period" in ingress["healthcheck"]
    assert "GU1_WEBHOOK_SECRET" not in environment(ingress)  # secrets are the deployment's
