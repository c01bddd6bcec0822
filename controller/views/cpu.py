"""CPU% for one-shot commands (`status`, `activity-summary`): the host's load over a short
window that the command opens as early as it can.

A single `psutil.cpu_percent` reading needs an interval to measure over. This module
imports only psutil and the observed-state types, so a command can open the window before
it loads the rest of its modules and the spec, and rarely has to wait for it at the end.
"""

from __future__ import annotations

import time
from pathlib import Path

import psutil

from controller.model.observed import ResourcesObs
from controller.observe.resources import disk_usage

MIN_CPU_WINDOW_S = 0.05


class OneShotCpu:
    """CPU% over the interval between construction and `sample` (at least MIN_CPU_WINDOW_S)."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        psutil.cpu_percent(interval=None)  # start of the measuring interval

    def sample(self, disk_path: Path | None) -> ResourcesObs:
        left = MIN_CPU_WINDOW_S - (time.monotonic() - self.t0)
        if left > 0:
            time.sleep(left)
        disk_percent, free = disk_usage(disk_path)
        return ResourcesObs(
            cpu_percent=psutil.cpu_percent(interval=None),
            memory_percent=psutil.virtual_memory().percent,
            disk_free_bytes=free,
            disk_percent=disk_percent,
        )
