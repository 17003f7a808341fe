"""The fake providers themselves: scripting over the admin API, counting, and the CLI.

Every test here runs on both servers (threaded and aio): `fake_providers` is
overridden for this module. Latency and the aio server's own edges are tested
in tests/integration/devkit/test_fake_latency.py.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
import requests

from devkit.fake_providers.credentials import DEFAULT_NOTUS_API_KEY, FakeCredentials
from devkit.fake_providers.server import SERVERS, FakeProviders
from devkit.fake_providers.steps import parse_script

NOTUS_PATH = "/notus/api/v1/kyc/individual-verification-sessions/standard/"


@pytest.fixture(scope="module", params=SERVERS)
def server_kind(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def fake_providers(server_kind):
    with FakeProviders(server=server_kind) as fake:
        yield fake


def notus_get(fake, session_id, key=DEFAULT_NOTUS_API_KEY):
    return requests.get(fake.url + NOTUS_PATH + session_id, headers={"x-api-key": key}, timeout=5)


def test_admin_api_scripts_a_session_and_reports_its_requests(fake_providers, new_session_id):
    session_id = new_session_id("notus")
    created = requests.post(
        fake_providers.url + "/_fake/sessions",
        json={"provider": "notus", "id": session_id, "script": ["PENDING", "APPROVED"]},
        timeout=5,
    )
    assert created.status_code == 201
    assert created.json()["requests"] == 0
    statuses = [notus_get(fake_providers, session_id).json()["session"]["status"] for _ in range(3)]
    assert statuses == ["PENDING", "APPROVED", "APPROVED"]
    info = requests.get(f"{fake_providers.url}/_fake/sessions/notus/{session_id}", timeout=5)
    assert info.status_code == 200
    assert info.json()["requests"] == 3 == fake_providers.request_count("notus", session_id)
    assert info.json()["script"] == ["PENDING", "APPROVED"]


def test_admin_api_reports_bad_requests(fake_providers):
    url = fake_providers.url + "/_fake/sessions"
    bad = [
        {"provider": "nope", "id": "x", "script": ["a"]},
        {"provider": "notus", "id": "", "script": ["a"]},
        {"provider": "notus", "id": "x", "script": []},
        {"provider": "notus", "id": "x", "script": "PENDING"},
        {"provider": "notus", "id": "x", "script": [{"fault": "meteor"}]},
        {"provider": "predicate", "id": "x", "script": ["pending"], "type": "company"},
    ]
    for body in bad:
        answer = requests.post(url, json=body, timeout=5)
        assert answer.status_code == 400, body
        assert answer.json()["error"]
    assert requests.post(url, data=b"not json", timeout=5).status_code == 400
    missing = requests.get(fake_providers.url + "/_fake/sessions/notus/never-added", timeout=5)
    assert missing.status_code == 404
    assert requests.get(fake_providers.url + "/_fake/health", timeout=5).json()["ok"] is True


def test_unauthorized_requests_do_not_consume_steps(fake_providers, new_session_id):
    session_id = new_session_id("notus")
    fake_providers.add_session("notus", session_id, ["PENDING", "APPROVED"])
    assert notus_get(fake_providers, session_id, key="wrong").status_code == 401
    assert requests.get(fake_providers.url + NOTUS_PATH + session_id, timeout=5).status_code == 401
    assert fake_providers.request_count("notus", session_id) == 0
    assert notus_get(fake_providers, session_id).json()["session"]["status"] == "PENDING"


def test_concurrent_requests_each_consume_exactly_one_step(fake_providers, new_session_id):
    session_id = new_session_id("notus")
    script = [f"STEP_{n}" for n in range(40)]
    fake_providers.add_session("notus", session_id, script)
    seen: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        with requests.Session() as session:
            for _ in range(5):
                answer = session.get(
                    fake_providers.url + NOTUS_PATH + session_id,
                    headers={"x-api-key": DEFAULT_NOTUS_API_KEY},
                    timeout=5,
                )
                with lock:
                    seen.append(answer.json()["session"]["status"])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == sorted(script)
    assert fake_providers.request_count("notus", session_id) == 40


def test_unknown_paths_and_methods(fake_providers):
    assert requests.get(fake_providers.url + "/nope/x", timeout=5).status_code == 404
    assert requests.get(fake_providers.url + "/notus/api/v1/other", timeout=5).status_code == 404
    answer = requests.post(fake_providers.url + NOTUS_PATH + "x", timeout=5)
    assert answer.status_code == 405


def test_custom_credentials_and_provider_env(server_kind):
    credentials = FakeCredentials(notus_api_key="custom-key", bank131_project="custom-project")
    with FakeProviders(credentials=credentials, server=server_kind) as fake:
        env = fake.provider_env()
        assert env["NOTUS_API_KEY"] == "custom-key"
        assert env["BANK131_PROJECT"] == "custom-project"
        assert env["NOTUS_BASE_URL"] == fake.base_url("notus") == f"{fake.url}/notus"
        assert set(env) == {
            "NOTUS_BASE_URL",
            "NOTUS_API_KEY",
            "BANK131_BASE_URL",
            "BANK131_PROJECT",
            *credentials.bank131_signing_env(),
            "GU1_BASE_URL",
            "GU1_API_KEY",
            "PREDICATE_BASE_URL",
            "PREDICATE_API_KEY",
        }
        fake.add_session("notus", "s1", ["PENDING"])
        assert notus_get(fake, "s1").status_code == 401
        assert notus_get(fake, "s1", key="custom-key").status_code == 200
    with pytest.raises(RuntimeError):
        _ = fake.url


@pytest.mark.parametrize(
    "step",
    [{"fault": "timeout", "delay": -1}, {"fault": "server_error", "http_status": 99}, 5, {}],
)
def test_invalid_steps_are_refused(step):
    with pytest.raises(ValueError):
        parse_script([step])


def test_command_line_server_prints_its_url_and_stops_on_sigterm(server_kind):
    proc = subprocess.Popen(
        [sys.executable, "-m", "devkit.fake_providers", "--port", "0", "--server", server_kind],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = first.rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:")
        assert requests.get(url + "/_fake/health", timeout=5).json()["ok"] is True
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    assert stderr == ""
