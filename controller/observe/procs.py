"""Is an agent process still running? Answered from the OS, never from memory.

A pid alone is not an identity: after an agent exits, the OS may hand its pid to an unrelated
process. The shim records the process create time next to the pid, and a process counts as
ours only when both match. A zombie (exited, not yet reaped by its parent) is not alive.
"""

from __future__ import annotations

from pathlib import Path

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


# the agent shim the local runner starts by file path (controller/act/runners/shim.py); named
# here by path, since observing imports nothing of the acting layer
SHIM_SCRIPT = Path(__file__).resolve().parent.parent / "act" / "runners" / "shim.py"


def is_attempt_shim(pid: int, create_time: float | None, start_record: Path) -> bool:
    """True when `pid` (created at `create_time`) is the shim the local runner started for
    the attempt whose start record is `start_record`: alive, with that create time, running
    the shim script with `--start-record <start_record>`.

    Used only when the store has no pid for an attempt (the controller died between
    starting the shim and recording it): the start record is then the only lead, and the
    agent could have written any pid there. A process the user runs never has this argv.
    """
    if not is_alive(pid, create_time):
        return False
    try:
        argv = psutil.Process(pid).cmdline()
    except psutil.Error:
        return False
    if len(argv) < 2 or Path(argv[1]).resolve() != SHIM_SCRIPT:
        return False
    pairs = zip(argv, argv[1:], strict=False)
    return any(a == "--start-record" and b == str(start_record) for a, b in pairs)
