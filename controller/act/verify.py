"""The verify gate: run the user's verify command in a scratch checkout of a merge result.

The command leads its own session, so a timeout (or the end of the run) can stop every
process it started (`proctree`: its session and its descendants). Its output goes through a
pipe into the attempt's verify log, which is opened through `state.files` (a symlink planted
in its place is replaced, never followed) and capped like an agent's log (`logcap`).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

from controller.act.runners import logcap, proctree
from controller.state import files

VERIFY_KILL_GRACE_S = 5.0
VERIFY_TICK_S = 0.05  # how often the pump checks whether the command has exited


def _run_logged(argv: list[str], cwd: Path, log: logcap.CappedLog, timeout_s: float) -> int | None:
    """Run `argv` with output to `log`; its exit code, or None on timeout."""
    out_r, out_w = os.pipe()
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=out_w,
            start_new_session=True,
        )
    except OSError:
        os.close(out_r)
        raise
    finally:
        os.close(out_w)
    try:
        exited = lambda: proc.poll() is not None  # noqa: E731
        deadline = time.monotonic() + timeout_s
        timed_out = logcap.pump(out_r, log, exited, deadline, tick_s=VERIFY_TICK_S)
        if timed_out:
            proctree.terminate(proc.pid, (), VERIFY_KILL_GRACE_S, lambda: logcap.drain(out_r, log))
        # leftovers must not outlive the command
        proctree.signal_all(proctree.members(proc.pid), signal.SIGKILL)
        proc.wait()
        logcap.drain(out_r, log)
    finally:
        os.close(out_r)
    return None if timed_out else proc.returncode


def run_verify(
    verify: list[str],
    cwd: Path,
    log_path: Path,
    timeout_s: float,
    *,
    state_root: Path | None = None,
    log_limit: int | None = None,
) -> str | None:
    """Run the verify gate in `cwd`; None when it passed, else why it failed.

    The log is opened from `state_root` (default: its own folder) through `state.files`.
    """
    flags = os.O_RDWR | os.O_APPEND | os.O_TRUNC
    fd = files.open_file(state_root or log_path.parent, log_path, flags)
    try:
        log = logcap.CappedLog(fd, log_limit)
        log.write(f"$ {shlex.join(verify)}\n".encode())
        try:
            code = _run_logged(verify, cwd, log, timeout_s)
        except OSError as exc:
            log.write(f"orchestrator: cannot run verify command: {exc}\n".encode())
            return f"verify command could not start ({exc}); log: {log_path}"
    finally:
        os.close(fd)
    if code is None:
        return f"verify timed out after {timeout_s:g}s; log: {log_path}"
    if code != 0:
        return f"verify exited with code {code}; log: {log_path}"
    return None
