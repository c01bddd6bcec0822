"""Small helpers the benchmarks share (run them from the repository root)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

# a fixed identity for the scratch repositories the benchmarks build
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def median_ms(fn: Callable[[], object], runs: int) -> float:
    """Median wall-clock time of `runs` calls of `fn`, in milliseconds."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)
