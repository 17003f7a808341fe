"""CPU accounting of process trees and the machine, and the statistics the benchmarks print."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import psutil  # type: ignore[import-untyped]  # no types-psutil in the venv


def tree_cpu(pids: Sequence[int]) -> float:
    """CPU seconds (user+system) used so far by these processes and all their descendants.

    Exited descendants count through their parent's children_* times once reaped, so
    the difference of two readings is the CPU used in between, even if a pool
    process was replaced meanwhile.
    """
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for proc in procs:
            try:
                t = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += t.user + t.system + t.children_user + t.children_system
    return total


def self_cpu() -> float:
    return time.process_time()


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all processes and cores."""
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    total = sum(times)
    return total - idle, total
