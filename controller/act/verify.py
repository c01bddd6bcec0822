"""The verify gate: run the user's verify command in a scratch checkout of a merge result.

The command leads its own session, so a timeout (or the end of the run) can stop every
process it started; its output goes to the attempt's verify log.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from pathlib import Path
from typing import BinaryIO

VERIFY_KILL_GRACE_S = 5.0


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the verify command's process group (it leads its own session)."""
    for sig, wait_s in ((signal.SIGTERM, VERIFY_KILL_GRACE_S), (signal.SIGKILL, 1.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _run_logged(argv: list[str], cwd: Path, log: BinaryIO, timeout_s: float) -> int | None:
    """Run `argv` with output to `log`; its exit code, or None on timeout."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return None
    with contextlib.suppress(ProcessLookupError):  # leftovers must not outlive the command
        os.killpg(proc.pid, signal.SIGKILL)
    return code


def run_verify(verify: list[str], cwd: Path, log_path: Path, timeout_s: float) -> str | None:
    """Run the verify gate in `cwd`; None when it passed, else why it failed."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        log.write(f"$ {shlex.join(verify)}\n".encode())
        log.flush()
        try:
            code = _run_logged(verify, cwd, log, timeout_s)
        except OSError as exc:
            log.write(f"orchestrator: cannot run verify command: {exc}\n".encode())
            return f"verify command could not start ({exc}); log: {log_path}"
    if code is None:
        return f"verify timed out after {timeout_s:g}s; log: {log_path}"
    if code != 0:
        return f"verify exited with code {code}; log: {log_path}"
    return None
