"""Identical log lines, rate-limited: a failure that repeats cannot flood `controller.log`.

Holdoffs (`state.holdoffs`) already space out the actions that keep failing; this is the
second guard, for every line: the same level and text again within `window_s` seconds is
dropped and counted, and the next time it is written it says how many were dropped
("(same line 42 more times in the last 60s)"). Different lines pass untouched, and so does
every line with a traceback (each one may differ where it matters).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

WINDOW_S = 60.0
MAX_REMEMBERED = 1000  # distinct lines remembered at once; the oldest are forgotten


class RepeatFilter:
    """A loguru `filter=`: True to write the record, False to drop it (see the module)."""

    def __init__(self, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic):
        self.window_s = window_s
        self.clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}  # line -> (written, dropped)
        self._lock = threading.Lock()

    def __call__(self, record: Any) -> bool:
        exc = record["exception"]
        if exc is not None and exc.type is not None:
            return True
        key = (record["level"].name, record["message"])
        now = self.clock()
        with self._lock:
            written, dropped = self._seen.get(key, (None, 0))
            if written is not None and now - written < self.window_s:
                self._seen[key] = (written, dropped + 1)
                return False
            self._seen.pop(key, None)
            self._seen[key] = (now, 0)
            if len(self._seen) > MAX_REMEMBERED:
                del self._seen[next(iter(self._seen))]
        if dropped:
            times = f"{dropped} more time{'s' if dropped != 1 else ''}"
            record["message"] += f" (same line {times} in the last {self.window_s:.0f}s)"
        return True
