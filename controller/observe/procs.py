"""Is an agent process still running? Answered from the OS, never from memory.

A pid alone is not an identity: after an agent exits, the OS may hand its pid to an unrelated
process. The shim records the process create time next to the pid, and a process counts as
ours only when both match. A zombie (exited, not yet reaped by its parent) is not alive.
"""

from __future__ import annotations

import psutil

CREATE_TIME_TOLERANCE_S = 0.05


def is_alive(pid: int | None, create_time: float | None) -> bool:
    """True when `pid` exists, was created at `create_time` (±0.05 s), and is not a zombie.

    Without a create time the pid cannot be told apart from a reused one, so the answer is
    False: a run the controller cannot identify is treated as lost rather than as running.
    """
    if not pid or pid <= 0 or create_time is None:
        return False
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > CREATE_TIME_TOLERANCE_S:
            return False
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False  # gone, or not inspectable: cannot be identified as ours
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # identified by pid and create time; only its status is hidden
