"""LocalRunner: agents as detached OS processes on this machine, each under a shim.

Why detached: an attempt must survive the controller (a restart must not kill running
agents), so each shim gets its own session and process group; the controller only keeps
(pid, start time) -- stored by the caller from this runner's own Popen -- to find, judge
and stop it later. The pair, not the pid alone, identifies a process: a recycled pid with
another start time is never signalled (`state.identity`, the liveness check observe uses).
Files in the state folder (the log, the records) are opened through `state.files`, never
through a symlink an agent planted there.

The shim is started by file path rather than with `-m controller.act.runners.shim`: `-m` puts
the working directory (the agent's worktree, which may hold another copy of this very
package) first on sys.path, while a script path only adds the shim's own directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from controller.act.runners import proctree, shim
from controller.act.runners.base import Launched, LaunchRequest
from controller.state import files, identity
from controller.state.paths import StatePaths
from controller.state.store import Store

SHIM_PATH = Path(shim.__file__).resolve()


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
        "--state-root",
        str(req.files_root),
        "--grace",
        str(req.kill_grace_s),
    ]
    if req.log_limit is not None:
        argv += ["--log-limit", str(req.log_limit)]
    if req.timeout_s is not None:
        argv += ["--timeout", str(req.timeout_s)]
    if req.stdin_path is not None:
        argv += ["--stdin", str(req.stdin_path)]
    if req.setup is not None and req.setup_log is not None:
        argv += ["--setup-json", json.dumps(list(req.setup)), "--setup-log", str(req.setup_log)]
    if req.stream is not None and req.stream_record is not None:
        argv += ["--stream", req.stream, "--stream-record", str(req.stream_record)]
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
        root = req.files_root
        for stale in (req.start_record, req.exit_record, req.stream_record):  # earlier tries
            if stale is not None:
                files.unlink(root, stale)
        files.ensure_dirs(root, req.progress_file.parent)
        started_at = time.time()
        log = files.open_file(root, req.log_path)  # the shim's own errors land in the log too
        try:
            proc = subprocess.Popen(
                shim_argv(req),
                cwd=req.cwd,
                env=req.local_env(os.environ),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        finally:
            os.close(log)
        self._children[proc.pid] = proc
        if self._on_exit is not None:
            threading.Thread(target=self._wait_for, args=(proc,), daemon=True).start()
        # an unreaped child is at worst a zombie, which still has its start time
        me = identity.identify(proc.pid)
        return Launched(
            pid=proc.pid,
            create_time=me.create_time if me.create_time is not None else started_at,
            started_at=started_at,
            start_id=me.start_id,
        )

    def alive(
        self, pid: int | None, create_time: float | None, start_id: str | None = None
    ) -> bool:
        """The one liveness check (`state.identity.is_alive`), as observe uses it."""
        return identity.is_alive(pid, create_time, start_id)

    def stop(
        self,
        pid: int | None,
        create_time: float | None,
        grace_s: float = 5.0,
        handle: str | None = None,
        start_id: str | None = None,
    ) -> bool:
        """Stop the attempt whose shim is `pid` (the caller passes the pid and start time
        the controller recorded from its own Popen, never one read from the runs folder):
        SIGTERM to its process group, which the shim forwards to the agent before stopping
        what the agent left behind; after `grace_s`, SIGKILL to every member still alive --
        the shim's session and every descendant, including those that left with `setsid`.
        True if it was alive."""
        if pid is None or not self.alive(pid, create_time, start_id):
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
        if not self._wait_gone(pid, grace_s):
            proctree.signal_all(proctree.members(pid), signal.SIGKILL)
            _killpg(pid, signal.SIGKILL)
            self._wait_gone(pid, 2.0, kill=True)  # SIGKILL is delivered asynchronously
        self._wait_child(pid, 1.0)
        return True

    def _wait_gone(self, pid: int, timeout_s: float, kill: bool = False) -> bool:
        deadline = time.monotonic() + timeout_s
        while left := proctree.members(pid):
            if time.monotonic() >= deadline:
                return False
            if kill:  # new processes forked meanwhile: kill them too
                proctree.signal_all(left, signal.SIGKILL)
            self.reap()
            time.sleep(proctree.POLL_S)
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
