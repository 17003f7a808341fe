"""The anchors the fleet benchmark measures itself against, in the same run: bare HTTP clients
(50 threads on one `requests.Session`; aiohttp with 200 requests in flight) against the same
fake provider server, which runs in a process of its own (`FakeServer`)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import requests
from requests.adapters import HTTPAdapter

from devkit.bench.processes import self_cpu, tree_cpu

PROVIDER = "notus"
STATUS_PATH = "/api/v1/kyc/individual-verification-sessions/standard/"


class SetupError(RuntimeError):
    """A service, the fake server or the fleet did not start: no figures."""


class FakeServer:
    """`python -m devkit.fake_providers --server aio` in a process of its own."""

    def __init__(self, latency_ms: float, jitter_ms: float, log_dir: Path) -> None:
        self._log: IO[str] = (log_dir / "fake-providers.err").open("w")
        self._drainer: threading.Thread | None = None
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devkit.fake_providers",
                "--server",
                "aio",
                "--port",
                "0",
                "--latency-ms",
                str(latency_ms),
                "--jitter-ms",
                str(jitter_ms),
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.http = requests.Session()
        try:
            self.url, self.env = self._read_banner()
        except BaseException:
            self.stop()
            raise

    def _read_banner(self) -> tuple[str, dict[str, str]]:
        """The URL (first line) and the worker environment it prints (KEY=VALUE lines)."""
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if not first.startswith("fake providers listening"):
            raise SetupError(f"the fake providers did not start: {first!r}")
        url = first.rsplit(" ", 1)[-1].strip()
        env: dict[str, str] = {}
        for line in self.proc.stdout:
            if line.startswith("script sessions"):
                break
            key, sep, value = line.strip().partition("=")
            if sep and key.isupper():
                env[key] = value
        # Keep reading (and dropping) its output so the pipe never fills.
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        return url, env

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for _ in self.proc.stdout:
            pass

    @property
    def api_key(self) -> str:
        return self.env["NOTUS_API_KEY"]

    def status_url(self, session_id: str) -> str:
        return f"{self.url}/{PROVIDER}{STATUS_PATH}{session_id}"

    def add_sessions(self, ids: Sequence[str], script: list[str], *, loop: bool) -> None:
        for start in range(0, len(ids), 1000):
            sessions = [
                {"provider": PROVIDER, "id": i, "script": script, "loop": loop}
                for i in ids[start : start + 1000]
            ]
            answer = self.http.post(
                self.url + "/_fake/sessions/batch", json={"sessions": sessions}, timeout=30
            )
            if answer.status_code != 201:
                raise SetupError(f"scripting the fake sessions failed: {answer.text}")

    def cpu(self) -> float:
        return tree_cpu([self.proc.pid])

    def health_problem(self) -> str:
        """'' if the server answers its health check at once, else what is wrong."""
        try:
            self.http.get(self.url + "/_fake/health", timeout=5).raise_for_status()
        except requests.RequestException as exc:
            return f"the fake server did not answer its health check: {exc}\n"
        return ""

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._drainer is not None:
            self._drainer.join(timeout=5)  # EOF once the process is gone
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


@dataclass
class AnchorFigures:
    requests_per_second: float
    cpu_ms_per_request: float
    fake_ms_per_request: float
    errors: int = 0


def anchor_threads(
    fake: FakeServer, ids: Sequence[str], threads: int, seconds: float
) -> AnchorFigures:
    """`threads` threads sharing one requests.Session, each GETting statuses in a loop."""
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=threads))
    headers = {"x-api-key": fake.api_key}
    counts = [0] * threads
    errors = [0] * threads
    stop = threading.Event()
    barrier = threading.Barrier(threads + 1)

    def loop(k: int) -> None:
        barrier.wait()
        i = k
        while not stop.is_set():
            try:
                answer = session.get(
                    fake.status_url(ids[i % len(ids)]), headers=headers, timeout=10
                )
                answer.json()["session"]["status"]  # read and parse, as a poll does
                counts[k] += 1
            except (requests.RequestException, ValueError, KeyError):
                errors[k] += 1
            i += threads

    workers = [threading.Thread(target=loop, args=(k,), daemon=True) for k in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    time.sleep(1.0)  # connections opened, threads running
    figures = _measure(fake, lambda: sum(counts), seconds)
    stop.set()
    for worker in workers:
        worker.join(timeout=15)
    session.close()
    figures.errors = sum(errors)
    return figures


def anchor_asyncio(
    fake: FakeServer, ids: Sequence[str], inflight: int, seconds: float
) -> AnchorFigures | None:
    """aiohttp, `inflight` requests in flight on one session; None without aiohttp."""
    try:
        import aiohttp
    except ImportError:
        return None

    async def run() -> AnchorFigures:
        count = 0
        errors = 0
        stop = asyncio.Event()
        headers = {"x-api-key": fake.api_key}
        connector = aiohttp.TCPConnector(limit=inflight)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def loop(k: int) -> None:
                nonlocal count, errors
                i = k
                while not stop.is_set():
                    try:
                        url = fake.status_url(ids[i % len(ids)])
                        async with session.get(url, headers=headers) as answer:
                            (await answer.json())["session"]["status"]
                        count += 1
                    except (aiohttp.ClientError, ValueError, KeyError):
                        errors += 1
                    i += inflight

            tasks = [asyncio.create_task(loop(k)) for k in range(inflight)]
            await asyncio.sleep(1.0)
            started, cpu0, fake0, count0 = time.monotonic(), self_cpu(), fake.cpu(), count
            await asyncio.sleep(seconds)
            elapsed, cpu, fake_cpu = (
                time.monotonic() - started,
                self_cpu() - cpu0,
                fake.cpu() - fake0,
            )
            done = count - count0
            stop.set()
            await asyncio.gather(*tasks)
        return AnchorFigures(
            done / elapsed, 1000 * cpu / max(done, 1), 1000 * fake_cpu / max(done, 1), errors
        )

    return asyncio.run(run())


def _measure(fake: FakeServer, counter: Callable[[], int], seconds: float) -> AnchorFigures:
    started, cpu0, fake0, count0 = time.monotonic(), self_cpu(), fake.cpu(), counter()
    time.sleep(seconds)
    elapsed, cpu, fake_cpu = time.monotonic() - started, self_cpu() - cpu0, fake.cpu() - fake0
    done = counter() - count0
    return AnchorFigures(done / elapsed, 1000 * cpu / max(done, 1), 1000 * fake_cpu / max(done, 1))
