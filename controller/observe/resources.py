"""Host load for admission control: smoothed CPU% and memory%, and the disk's use.

Admission (how many agents may run) follows CPU, memory and (when a rule is set) disk
thresholds; disk use is read as is, it changes slowly. Raw readings jump
around; acting on them would start and hold agents on every spike and dip. So readings are
smoothed with a time-based exponential moving average (time constant `tau`, default 20 s):
a reading taken `dt` seconds after the previous one moves the average by
`1 - exp(-dt / tau)` of the difference, whatever the poll interval. The smoothing is a pure
function (`ewma`).

Whose load: CPU is measured over a window (`CpuWindow`) as the host's busy time minus this
process's own CPU time -- itself and the children it waited for, i.e. its own git calls.
A reading taken while the command runs its own git calls would otherwise count them as
load (one 0.1 s sample during a pass made four `diff` runs plan 4, 4, 3 and 1 slots).

Who measures: the watch loop keeps `IdleLoad`, fed only over the waits between passes (no
git call of its own runs then, no merge either), and publishes the average to the store
(`publish`); `diff` and `status` use that published value while a controller runs
(`published`), so they plan with the number the controller acts on. Without a controller
they measure once, from the start of the command (`views.cpu.OneShotCpu`, the same window).
`ResourceSampler` samples on every call (the dashboard's live view).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from controller.model.observed import ResourcesObs

if TYPE_CHECKING:
    from controller.state.store import Store

DEFAULT_TAU_S = 20.0
FIRST_CPU_INTERVAL_S = 0.1
PRIME_WINDOW_S = 0.2  # the watch loop's first reading, before any pass
MIN_IDLE_WINDOW_S = 0.2  # shorter waits between passes are not measured
PUBLISHED_KEY = "resources"  # the `controller` table's key for the published average
PUBLISHED_MAX_AGE_S = 60.0  # an older published value is not used


def _own_cpu_s() -> float:
    """CPU seconds of this process and of the children it has waited for (its git calls)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _host_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the host, summed over its CPUs."""
    t = psutil.cpu_times()
    total = sum(t)
    idle = t.idle + getattr(t, "iowait", 0.0)
    return total - idle, total


class CpuWindow:
    """Host CPU% from its creation to `percent()`, without this process's own CPU."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self._host = _host_cpu_s()
        self._own = _own_cpu_s()

    @property
    def age(self) -> float:
        return time.monotonic() - self.started

    def percent(self) -> float:
        busy, total = _host_cpu_s()
        busy, total = busy - self._host[0], total - self._host[1]
        own = _own_cpu_s() - self._own
        if total <= 0:
            return 0.0
        return min(100.0, max(0.0, (busy - own) / total * 100.0))


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
    """Samples host CPU (without this process's own, `CpuWindow`) and memory use, smoothed
    over `tau` seconds; each `sample` measures the time since the previous one."""

    def __init__(self, disk_path: Path | None = None, tau: float = DEFAULT_TAU_S) -> None:
        self.disk_path = disk_path
        self.tau = tau
        self._cpu: float | None = None
        self._mem: float | None = None
        self._last: float | None = None
        self._window: CpuWindow | None = None

    def sample(self, now: float) -> ResourcesObs:
        if self._window is None:
            self._window = CpuWindow()
            time.sleep(FIRST_CPU_INTERVAL_S)
        cpu_raw, self._window = self._window.percent(), CpuWindow()
        dt = 0.0 if self._last is None else now - self._last
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


class IdleLoad(ResourceSampler):
    """The watch loop's smoothed load, measured only over the waits between passes (see the
    module docstring). `sample` returns the current average without measuring: a pass's
    own git calls are never part of a reading."""

    def prime(self, now: float) -> None:
        """A first reading before any pass (a short blocking window)."""
        if self._last is None:
            window = CpuWindow()
            time.sleep(PRIME_WINDOW_S)
            self.add(window, now)

    def add(self, window: CpuWindow, now: float) -> None:
        """Fold a window (an idle wait) into the average; a too short one is ignored."""
        if window.age < MIN_IDLE_WINDOW_S and self._last is not None:
            return
        dt = 0.0 if self._last is None else now - self._last
        self._cpu = ewma(self._cpu, window.percent(), dt, self.tau)
        self._mem = ewma(self._mem, psutil.virtual_memory().percent, dt, self.tau)
        if self._last is None or now > self._last:
            self._last = now

    def sample(self, now: float) -> ResourcesObs:
        self.prime(now)
        disk_percent, free = disk_usage(self.disk_path)
        return ResourcesObs(
            cpu_percent=self._cpu or 0.0,
            memory_percent=self._mem or 0.0,
            disk_free_bytes=free,
            disk_percent=disk_percent,
        )


def publish(store: Store, resources: ResourcesObs, now: float) -> None:
    """Write the controller's average for `diff` and `status` (`published`)."""
    value = {"cpu": resources.cpu_percent, "memory": resources.memory_percent, "at": now}
    store.set_meta(PUBLISHED_KEY, json.dumps(value))


def published(
    store: Store | None, now: float, disk_path: Path | None, max_age_s: float = PUBLISHED_MAX_AGE_S
) -> ResourcesObs | None:
    """The load a running controller published, if recent enough; None otherwise."""
    if store is None:
        return None
    try:
        data = json.loads(store.get_meta(PUBLISHED_KEY) or "null")
        cpu, mem, at = float(data["cpu"]), float(data["memory"]), float(data["at"])
    except (ValueError, TypeError, KeyError):
        return None
    if not 0 <= now - at <= max_age_s:
        return None
    disk_percent, free = disk_usage(disk_path)
    return ResourcesObs(
        cpu_percent=cpu, memory_percent=mem, disk_free_bytes=free, disk_percent=disk_percent
    )
