"""LocalRunner: agents as detached OS processes on this machine, each under a shim.

Why detached: an attempt must survive the controller (a restart must not kill running
agents), so each shim gets its own session and process group; the controller only keeps
(pid, create_time) -- stored by the caller -- to find, judge and stop it later. The pair, not
the pid alone, identifies a process: a recycled pid with another create_time is never
signalled.

The shim is started by file path rather than with `-m controller.act.runners.shim`: `-m` puts
the working directory (the agent's worktree, which may hold another copy of this very
package) first on sys.path, while a script path only adds the shim's own directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from controller.act.runners import shim
from controller.act.runners.base import Launched, LaunchRequest
from controller.state.paths import StatePaths
from controller.state.store import Store

SHIM_PATH = Path(shim.__file__).resolve()
CREATE_TIME_TOLERANCE_S = 0.05


def shim_argv(req: LaunchRequest) -> list[str]:
    argv = [
        sys.executable,
        str(SHIM_PATH),
        "--start-record",
        str(req.start_record),
        "--exit-record",
        str(req.exit_record),
        "--log",
        str(req.log_path),
        "--grace",
        str(req.kill_grace_s),
    ]
    if req.timeout_s is not None:
        argv += ["--timeout", str(req.timeout_s)]
    return [*argv, "--", *req.argv]


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


class LocalRunner:
    """Runner for local processes (see the module docstring)."""

    local_worktrees = True
    poll_interval_s: float | None = None  # exits are announced by the shims' exit records

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._on_exit: Callable[[], None] | None = None

    def notify_exits(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from a waiter thread) when a shim this runner started exits: it
        has written its exit record by then, so the controller can look at once instead of
        at its file watcher's next poll. Adopted attempts are still seen by the watcher."""
        self._on_exit = callback

    def _wait_for(self, proc: subprocess.Popen[bytes]) -> None:
        proc.wait()
        if self._on_exit is not None:
            self._on_exit()

    def poll(self, paths: StatePaths, store: Store) -> str | None:
        """The shims keep the runs directory current themselves; only reap children."""
        self.reap()
        return None

    def start(self, req: LaunchRequest) -> Launched:
        for path in (req.log_path, req.start_record, req.exit_record, req.progress_file):
            path.parent.mkdir(parents=True, exist_ok=True)
        for stale in (req.start_record, req.exit_record):  # left by an earlier launch try
            stale.unlink(missing_ok=True)
        started_at = time.time()
        with req.log_path.open("ab") as log:  # the shim's own errors land in the log too
            proc = subprocess.Popen(
                shim_argv(req),
                cwd=req.cwd,
                env=req.local_env(os.environ),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        self._children[proc.pid] = proc
        if self._on_exit is not None:
            threading.Thread(target=self._wait_for, args=(proc,), daemon=True).start()
        try:  # an unreaped child is at worst a zombie, which still has a create_time
            create_time = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            create_time = started_at
        return Launched(pid=proc.pid, create_time=create_time, started_at=started_at)

    def alive(self, pid: int | None, create_time: float | None) -> bool:
        if pid is None:
            return False
        try:
            proc = psutil.Process(pid)
            if create_time is not None and (
                abs(proc.create_time() - create_time) > CREATE_TIME_TOLERANCE_S
            ):
                return False
            return proc.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
        except psutil.AccessDenied:
            return True

    def stop(
        self,
        pid: int | None,
        create_time: float | None,
        grace_s: float = 5.0,
        handle: str | None = None,
    ) -> bool:
        """SIGTERM the attempt's process group, SIGKILL after `grace_s`; True if it was alive."""
        if pid is None or not self.alive(pid, create_time):
            self.reap()
            return False
        try:
            leads_group = os.getpgid(pid) == pid
        except ProcessLookupError:
            return False
        if not leads_group:  # not one of our shims after all: signal that process only
            os.kill(pid, signal.SIGTERM)
            return True
        _killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while shim.group_members(pid) and time.monotonic() < deadline:
            self.reap()
            time.sleep(shim.POLL_S)
        if shim.group_members(pid):
            _killpg(pid, signal.SIGKILL)
            deadline = time.monotonic() + 2.0  # SIGKILL is delivered asynchronously
            while shim.group_members(pid) and time.monotonic() < deadline:
                self.reap()
                time.sleep(shim.POLL_S)
        self._wait_child(pid, 1.0)
        return True

    def _wait_child(self, pid: int, timeout_s: float) -> None:
        proc = self._children.pop(pid, None)
        if proc is None:
            return
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._children[pid] = proc

    def reap(self) -> None:
        for pid, proc in list(self._children.items()):
            if proc.poll() is not None:
                del self._children[pid]
