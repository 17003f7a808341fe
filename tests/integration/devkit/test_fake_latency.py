"""The fakes' latency (at start, from Python and over the admin API) and the servers' edges.

Both servers (threaded and aio) run every test. Timings are checked from below
(an answer never comes before its latency) with generous upper bounds: the
machine is shared, so a slow answer proves nothing.
"""

from __future__ import annotations

import http.client
import random
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests

from devkit.fake_providers.credentials import DEFAULT_NOTUS_API_KEY
from devkit.fake_providers.latency import Latency
from devkit.fake_providers.server import MAX_BODY_BYTES, SERVERS, FakeProviders

NOTUS_PATH = "/notus/api/v1/kyc/individual-verification-sessions/standard/"
HEADERS = {"x-api-key": DEFAULT_NOTUS_API_KEY}


@pytest.fixture(params=SERVERS)
def server_kind(request) -> str:
    return request.param


@pytest.fixture
def make_fake(server_kind):
    started: list[FakeProviders] = []

    def make(**kwargs) -> FakeProviders:
        fake = FakeProviders(server=server_kind, **kwargs).start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


def new_session(fake: FakeProviders, script=("PENDING",), **kwargs) -> str:
    session_id = f"lat-{uuid.uuid4().hex[:12]}"
    fake.add_session("notus", session_id, list(script), **kwargs)
    return session_id


def timed_get(session: requests.Session, url: str) -> tuple[float, requests.Response]:
    started = time.perf_counter()
    answer = session.get(url, headers=HEADERS, timeout=10)
    return time.perf_counter() - started, answer


def test_latency_given_at_start_delays_provider_answers_not_admin_ones(make_fake):
    fake = make_fake(latency=0.25)
    session_id = new_session(fake)
    with requests.Session() as session:
        elapsed, answer = timed_get(session, fake.url + NOTUS_PATH + session_id)
        assert answer.status_code == 200
        assert 0.25 <= elapsed < 5
        # Refusals and unknown sessions are provider answers too.
        elapsed, answer = timed_get(session, fake.url + NOTUS_PATH + "never-added")
        assert answer.status_code == 404
        assert elapsed >= 0.25
        started = time.perf_counter()
        health = session.get(fake.url + "/_fake/health", timeout=10).json()
        assert time.perf_counter() - started < 0.2
    assert health["latency_ms"] == 250
    assert fake.latency == Latency(0.25)


def test_latency_is_settable_over_the_admin_api(make_fake):
    fake = make_fake()
    session_id = new_session(fake)
    url = fake.url + NOTUS_PATH + session_id
    with requests.Session() as session:
        elapsed, _ = timed_get(session, url)
        assert elapsed < 0.2
        answer = session.put(fake.url + "/_fake/latency", json={"latency_ms": 300}, timeout=10)
        assert answer.status_code == 200
        assert answer.json() == {"latency_ms": 300, "jitter_ms": 0}
        elapsed, _ = timed_get(session, url)
        assert elapsed >= 0.3
        # A missing field keeps its value; POST works as PUT.
        answer = session.post(fake.url + "/_fake/latency", json={"jitter_ms": 5}, timeout=10)
        assert answer.json() == {"latency_ms": 300, "jitter_ms": 5}
        assert session.get(fake.url + "/_fake/latency", timeout=10).json() == answer.json()
        session.put(fake.url + "/_fake/latency", json={"latency_ms": 0, "jitter_ms": 0})
        elapsed, _ = timed_get(session, url)
        assert elapsed < 0.2
    assert fake.latency == Latency()


@pytest.mark.parametrize(
    "body",
    [
        {"latency_ms": -1},
        {"latency_ms": "100"},
        {"latency_ms": True},
        {"jitter_ms": 10**9},
        {"latency": 100},
        [100],
    ],
)
def test_bad_latency_requests_are_refused_and_change_nothing(make_fake, body):
    fake = make_fake(latency=0.01)
    answer = requests.put(fake.url + "/_fake/latency", json=body, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"]
    assert requests.put(fake.url + "/_fake/latency", data=b"{", timeout=10).status_code == 400
    assert fake.latency == Latency(0.01)


def test_latency_set_from_python_adds_to_a_scripted_delay(make_fake):
    fake = make_fake()
    fake.set_latency(0.2)
    session_id = new_session(fake, [{"fault": "timeout", "delay": 0.2, "status": "APPROVED"}])
    with requests.Session() as session:
        elapsed, answer = timed_get(session, fake.url + NOTUS_PATH + session_id)
    assert answer.json()["session"]["status"] == "APPROVED"
    assert elapsed >= 0.4


def test_answers_wait_concurrently(make_fake):
    """40 requests with 0.5 s latency each, all in flight at once: about 0.5 s, not 20 s."""
    fake = make_fake(latency=0.5)
    session_id = new_session(fake)
    url = fake.url + NOTUS_PATH + session_id
    codes: list[int] = []
    barrier = threading.Barrier(40)

    def one() -> None:
        barrier.wait()
        codes.append(requests.get(url, headers=HEADERS, timeout=30).status_code)

    threads = [threading.Thread(target=one) for _ in range(40)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    assert codes == [200] * 40
    assert 0.5 <= elapsed < 8
    assert fake.request_count("notus", session_id) == 40


def test_keep_alive_one_connection_for_many_requests(make_fake):
    fake = make_fake(latency=0.01)
    session_id = new_session(fake)
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    try:
        sockets = set()
        for _ in range(5):
            connection.request("GET", NOTUS_PATH + session_id, headers=HEADERS)
            answer = connection.getresponse()
            assert answer.status == 200
            answer.read()
            assert answer.getheader("Connection", "").lower() != "close"
            assert connection.sock is not None
            sockets.add(connection.sock.getsockname())
        assert len(sockets) == 1
    finally:
        connection.close()
    assert fake.request_count("notus", session_id) == 5


def test_oversized_bodies_are_refused_and_the_connection_closed(make_fake):
    fake = make_fake()
    with socket.create_connection(("127.0.0.1", fake.port), timeout=10) as sock:
        sock.sendall(
            b"POST /_fake/sessions HTTP/1.1\r\nHost: x\r\n"
            + f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode()
        )
        received = b""
        while chunk := sock.recv(65536):  # the server closes: recv returns b""
            received += chunk
    assert received.startswith(b"HTTP/1.1 400")
    assert b"bad Content-Length" in received
    # A body at the limit is read (and refused as a bad session, not as too large).
    answer = requests.post(
        fake.url + "/_fake/sessions", data=b" " * MAX_BODY_BYTES, timeout=10
    ).json()
    assert answer == {"error": "the body must be JSON"}


def test_aio_server_refuses_a_chunked_body_past_the_limit():
    with FakeProviders(server="aio") as fake:

        def chunks():
            for _ in range(MAX_BODY_BYTES // 65536 + 2):
                yield b" " * 65536

        answer = requests.post(fake.url + "/_fake/sessions", data=chunks(), timeout=10)
        assert answer.status_code == 400
        assert answer.json() == {"error": "request body too large"}


def test_jitter_spreads_answers_around_the_base():
    latency = Latency(0.1, 0.04)
    rng = random.Random(7)
    samples = [latency.sample(rng) for _ in range(2000)]
    assert all(0.06 <= s <= 0.14 for s in samples)
    assert 0.095 < sum(samples) / len(samples) < 0.105
    assert max(samples) - min(samples) > 0.07
    assert Latency(0.01, 0.05).sample(rng) >= 0  # never below zero
    with pytest.raises(ValueError):
        Latency(-0.1)
    with pytest.raises(ValueError):
        FakeProviders(server="twisted")


def test_looping_scripts_and_batch_sessions(make_fake):
    fake = make_fake()
    looping = new_session(fake, ["IN_PROGRESS", "IN_REVIEW"], loop=True)
    ids = [f"batch-{uuid.uuid4().hex[:12]}" for _ in range(3)]
    batch = [{"provider": "notus", "id": i, "script": ["PENDING"]} for i in ids]
    with requests.Session() as session:
        statuses = [
            timed_get(session, fake.url + NOTUS_PATH + looping)[1].json()["session"]["status"]
            for _ in range(5)
        ]
        assert statuses == ["IN_PROGRESS", "IN_REVIEW", "IN_PROGRESS", "IN_REVIEW", "IN_PROGRESS"]
        assert fake.session_info("notus", looping)["loop"] is True
        # All or none: one bad session adds nothing.
        bad = session.post(
            fake.url + "/_fake/sessions/batch",
            json={"sessions": [*batch, {"provider": "notus", "id": "x", "script": []}]},
            timeout=10,
        )
        assert bad.status_code == 400
        assert bad.json()["error"].startswith("session 3:")
        assert fake.session_info("notus", ids[0]) is None
        created = session.post(
            fake.url + "/_fake/sessions/batch", json={"sessions": batch}, timeout=10
        )
        assert created.status_code == 201
        assert created.json() == {"created": 3}
        assert timed_get(session, fake.url + NOTUS_PATH + ids[2])[1].status_code == 200
        for body in ({"sessions": "x"}, {"sessions": [1]}, {}):
            answer = session.post(fake.url + "/_fake/sessions/batch", json=body, timeout=10)
            assert answer.status_code == 400, body


def test_command_line_latency_and_server(server_kind):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devkit.fake_providers",
            "--port",
            "0",
            "--server",
            server_kind,
            "--latency-ms",
            "150",
            "--jitter-ms",
            "10",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().rsplit(" ", 1)[-1].strip()
        assert f"server: {server_kind}" in proc.stdout.readline()
        assert requests.get(url + "/_fake/latency", timeout=5).json() == {
            "latency_ms": 150,
            "jitter_ms": 10,
        }
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    assert stderr == ""
    refused = subprocess.run(
        [sys.executable, "-m", "devkit.fake_providers", "--latency-ms", "-5"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert refused.returncode == 2
    assert "latency" in refused.stderr
