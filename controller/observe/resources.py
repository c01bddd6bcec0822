"""Host load for admission control: smoothed CPU% and memory%, and the disk's use.

Admission (how many agents may run) follows CPU, memory and (when a rule is set) disk
thresholds; disk use is read as is, it changes slowly. Raw readings jump
around; acting on them would start and hold agents on every spike and dip. So readings are
smoothed with a time-based exponential moving average (time constant `tau`, default 20 s):
a reading taken `dt` seconds after the previous one moves the average by
`1 - exp(-dt / tau)` of the difference, whatever the poll interval. The smoothing is a pure
function (`ewma`); `ResourceSampler` is the only stateful reader in `observe/`.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import psutil

from controller.model.observed import ResourcesObs

DEFAULT_TAU_S = 20.0
FIRST_CPU_INTERVAL_S = 0.1


def ewma(previous: float | None, value: float, dt: float, tau: float) -> float:
    """Time-constant EWMA step: the new average after observing `value` `dt` s later.

    No previous average -> `value`. `dt <= 0` (same instant, or a clock step backwards)
    leaves the average unchanged; `tau <= 0` disables smoothing.
    """
    if previous is None or tau <= 0:
        return value
    if dt <= 0:
        return previous
    alpha = 1.0 - math.exp(-dt / tau)
    return previous + alpha * (value - previous)


def disk_usage(path: Path | None) -> tuple[float | None, int | None]:
    """(percent used, bytes free) of the filesystem holding `path`, as `df` counts them: used
    / (used + available to non-root), so a disk whose reserve alone is left reads 100%."""
    if path is None:
        return None, None
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None, None
    total = usage.used + usage.free
    return (100.0 * usage.used / total if total > 0 else None), usage.free


class ResourceSampler:
    """Samples host CPU and memory use, smoothed over `tau` seconds.

    Note: `psutil.cpu_percent(interval=None)` measures since the previous call anywhere in the
    process, so keep one sampler per process and do not call it elsewhere.
    """

    def __init__(self, disk_path: Path | None = None, tau: float = DEFAULT_TAU_S) -> None:
        self.disk_path = disk_path
        self.tau = tau
        self._cpu: float | None = None
        self._mem: float | None = None
        self._last: float | None = None

    def sample(self, now: float) -> ResourcesObs:
        if self._last is None:
            cpu_raw = psutil.cpu_percent(interval=FIRST_CPU_INTERVAL_S)
            dt = 0.0
        else:
            cpu_raw = psutil.cpu_percent(interval=None)
            dt = now - self._last
        mem_raw = psutil.virtual_memory().percent
        self._cpu = ewma(self._cpu, cpu_raw, dt, self.tau)
        self._mem = ewma(self._mem, mem_raw, dt, self.tau)
        if self._last is None or now > self._last:
            self._last = now
        disk_percent, free = disk_usage(self.disk_path)  # slow to change: not smoothed
        return ResourcesObs(
            cpu_percent=self._cpu,
            memory_percent=self._mem,
            disk_free_bytes=free,
            disk_percent=disk_percent,
        )
