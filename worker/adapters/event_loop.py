"""One asyncio event loop per worker process, on a daemon thread.

Celery runs tasks synchronously (prefork, threads or solo pool); the poll
engine's HTTP calls run on this loop so the transport's connection pool
outlives a task. `run` submits a coroutine and waits for its result. A forked
child builds its own (the runtime is rebuilt after fork).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class EventLoopThread:
    def __init__(self, name: str = "kyc-poller-io") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coroutine` on the loop and wait for it (from any other thread).

        If the wait ends first (the timeout, or the task's own time limit raising in
        this thread), the coroutine is cancelled: its calls stop instead of going on
        for a caller that is gone.
        """
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def __enter__(self) -> EventLoopThread:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the loop, wait for its thread, and close it (idempotent)."""
        if self._loop.is_closed():
            return
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()
