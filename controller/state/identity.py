"""Which process a record names, and whether it still runs: the one liveness check.

A pid alone is not an identity: once a process exits, the OS may hand its pid to another.
So every process the controller records (an attempt's shim, a verify command) is stored
with its start time, and counts as alive only while a process with that pid *and* that
start time exists and is not a zombie.

Which start time: on Linux, the start in clock ticks since boot (`/proc/<pid>/stat` field
22) together with the boot id (`/proc/sys/kernel/random/boot_id`), as one text
(`start_id`, e.g. `"3f2a...:123456"`). It never changes, whatever happens to the wall
clock. psutil's `create_time` (seconds since the epoch) is derived from the boot time,
which moves when the wall clock is stepped (NTP, a VM resumed, a person setting the
date): a live agent would then stop matching its record, be declared lost and be started a
second time. `create_time` is still recorded (views show it; other platforms have nothing
better) and is the fallback where there is no `/proc`: it must match within ±0.05 s.

Rules shared by every caller (observe, the local runner, the verify record):
- no start time of either kind recorded: the process cannot be identified -> not alive;
- the pid exists but its start time cannot be read (access denied): not identified -> not
  alive; a process that is identified but whose status cannot be read -> alive.

Standard library and psutil only: the shim imports this module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import psutil

CREATE_TIME_TOLERANCE_S = 0.05
_PROC = "/proc"


@dataclass(frozen=True)
class ProcessIdentity:
    """A process as recorded: pid, start id (Linux) and create time (everywhere)."""

    pid: int
    start_id: str | None
    create_time: float | None


@lru_cache(maxsize=1)
def boot_id() -> str | None:
    """This boot's id (Linux), or None."""
    try:
        with open(f"{_PROC}/sys/kernel/random/boot_id") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def _stat_fields(pid: int) -> list[bytes] | None:
    """Fields 3.. of `/proc/<pid>/stat` (after the command name), or None."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data.rpartition(b")")[2].split()
    return fields if len(fields) >= 20 else None


def _start_of(fields: list[bytes]) -> str | None:
    boot = boot_id()
    return f"{boot}:{int(fields[19])}" if boot else None  # field 22: starttime in ticks


def start_id(pid: int) -> str | None:
    """The start id of `pid` (boot id and start in clock ticks), or None where unknown."""
    fields = _stat_fields(pid)
    return _start_of(fields) if fields is not None else None


def identify(pid: int) -> ProcessIdentity:
    """Record `pid` as it is now (for a process the caller just started or is)."""
    try:
        created: float | None = psutil.Process(pid).create_time()
    except psutil.Error:
        created = None
    return ProcessIdentity(pid=pid, start_id=start_id(pid), create_time=created)


def _alive_by_ticks(pid: int, recorded: str) -> bool | None:
    """Alive by the start id; None when this platform cannot tell (no /proc, no boot id)."""
    if boot_id() is None:
        return None
    fields = _stat_fields(pid)
    if fields is None:
        return False if os.path.isdir(f"{_PROC}/self") else None
    return _start_of(fields) == recorded and fields[0] not in (b"Z", b"X")


def _alive_by_create_time(pid: int, create_time: float) -> bool:
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > CREATE_TIME_TOLERANCE_S:
            return False
    except psutil.Error:
        return False  # gone, or not inspectable: cannot be identified as ours
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # identified by pid and create time; only its status is hidden


def is_alive(pid: int | None, create_time: float | None, start: str | None = None) -> bool:
    """True when the process recorded as (`pid`, `create_time`, `start`) still runs and
    is not a zombie. The start id decides where it was recorded and this platform has
    one; otherwise the create time (±0.05 s). Neither recorded: False (see the module
    docstring)."""
    if not pid or pid <= 0:
        return False
    if start:
        by_ticks = _alive_by_ticks(pid, start)
        if by_ticks is not None:
            return by_ticks
    if create_time is None:
        return False
    return _alive_by_create_time(pid, create_time)
