"""Is an agent process still running? Answered from the OS, never from memory.

A pid alone is not an identity: after an agent exits, the OS may hand its pid to an unrelated
process. Every process the controller records is stored with its start time, and counts as
ours only while both match: `state.identity.is_alive`, the one liveness check that the
local runner and the verify clean-up use too (start in clock ticks since boot where there is
a `/proc`, so a stepped wall clock changes nothing; psutil's create time elsewhere).
"""

from __future__ import annotations

from pathlib import Path

import psutil

from controller.state.identity import CREATE_TIME_TOLERANCE_S, is_alive

__all__ = ["CREATE_TIME_TOLERANCE_S", "SHIM_SCRIPT", "is_alive", "is_attempt_shim"]

# the agent shim the local runner starts by file path (controller/act/runners/shim.py); named
# here by path, since observing imports nothing of the acting layer
SHIM_SCRIPT = Path(__file__).resolve().parent.parent / "act" / "runners" / "shim.py"


def is_attempt_shim(
    pid: int, create_time: float | None, start_record: Path, start: str | None = None
) -> bool:
    """True when `pid` (started at `create_time` / `start`) is the shim the local runner
    started for the attempt whose start record is `start_record`: alive, with that start
    time, running the shim script with `--start-record <start_record>`.

    Used only when the store has no pid for an attempt (the controller died between
    starting the shim and recording it): the start record is then the only lead, and the
    agent could have written any pid there. A process the user runs never has this argv.
    """
    if not is_alive(pid, create_time, start):
        return False
    try:
        argv = psutil.Process(pid).cmdline()
    except psutil.Error:
        return False
    if len(argv) < 2 or Path(argv[1]).resolve() != SHIM_SCRIPT:
        return False
    pairs = zip(argv, argv[1:], strict=False)
    return any(a == "--start-record" and b == str(start_record) for a, b in pairs)
