"""The verify gate: run the user's verify command in a scratch checkout of a merge result.

The command leads its own session, so a timeout (or the end of the run) can stop every
process it started (`proctree`: its session and its descendants). Its output goes through a
pipe into the attempt's verify log, which is opened through `state.files` (a symlink planted
in its place is replaced, never followed) and capped like an agent's log (`logcap`).

Verify runs code an agent wrote, so it does not get the controller's environment (API keys,
cloud credentials, tokens): only `SESSION_ENV` (what a shell session needs to find programs,
speak the locale and find a temp folder), the names the spec passes (`verifyPassEnv`) and
the values it sets (`verifyEnv`). `VIRTUAL_ENV` and `CONDA_PREFIX` are kept because tools
that pick an environment (uv, poetry, pip, conda run) read them rather than PATH; no
secret lives in them. `PYTHONPATH` is withheld on purpose: pointing at the user's checkout,
it would make the verify run import that code instead of the merge result being verified.

Each run notes its pid beside its scratch worktree while it runs, so that a controller
restarted after a crash stops the verify runs its predecessor left (`kill_orphans`) before
their worktrees are removed.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

from controller.act.runners import logcap, proctree
from controller.state import files, identity

VERIFY_KILL_GRACE_S = 5.0
PID_SUFFIX = ".pid"
ORPHAN_STOP_GRACE_S = 2.0  # a leftover verify run's time to exit after SIGTERM
LAST_LINE_CHARS = 200  # of the verify output, quoted in the reason a merge failed
VERIFY_TICK_S = 0.05  # how often the pump checks whether the command has exited

SESSION_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LANGUAGE",
    "TERM",
    "TMPDIR",
    "TZ",
    "USER",
    "LOGNAME",
    "SHELL",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
)


def verify_environment(
    pass_names: Sequence[str] = (),
    values: Mapping[str, str] | None = None,
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The verify command's environment: the session variables and `LC_*` of `source`
    (default: the controller's environment), the `pass_names` found there, then `values`."""
    source = os.environ if source is None else source
    keep = set(SESSION_ENV) | set(pass_names)
    env = {k: v for k, v in source.items() if k in keep or k.startswith("LC_")}
    env.update(values or {})
    return env


def pid_file_for(cwd: Path) -> Path:
    """Where a verify run in scratch worktree `cwd` notes its process (beside the worktree,
    so `kill_orphans` finds it after a crash and `git.clear_scratch` removes it)."""
    return cwd.with_name(cwd.name + PID_SUFFIX)


def _note_pid(pid: int, pid_file: Path) -> None:
    """Note the verify process's identity (`state.identity`: pid and start time)."""
    try:
        note = json.dumps(asdict(identity.identify(pid))).encode()
        files.write_atomic(pid_file.parent, pid_file.name, note)
    except OSError:
        return


def kill_orphans(scratch_root: Path) -> list[int]:
    """Stop the verify runs a killed controller left behind (their pid files in the scratch
    folder), with everything they started (session and descendants); the pids of those
    still running. Call with the controller lock held, before any merge starts. Only a
    process with the noted pid *and* start time is signalled."""
    stopped: list[int] = []
    if os.path.islink(scratch_root) or not scratch_root.is_dir():
        return stopped
    for note in scratch_root.glob(f"verify-*{PID_SUFFIX}"):
        try:
            data = json.loads(files.read_bytes(scratch_root, note.name, files.KIB))
            pid, created, start = int(data["pid"]), data.get("create_time"), data.get("start_id")
            created = float(created) if isinstance(created, int | float) else None
            start = start if isinstance(start, str) else None
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if identity.is_alive(pid, created, start):
            proctree.terminate(pid, (), ORPHAN_STOP_GRACE_S)
            stopped.append(pid)
    return stopped


def _run_logged(
    argv: list[str],
    cwd: Path,
    log: logcap.CappedLog,
    timeout_s: float,
    env: Mapping[str, str],
    pid_file: Path | None = None,
) -> int | None:
    """Run `argv` with output to `log`; its exit code, or None on timeout. `pid_file`
    notes the process while it runs (`pid_file_for`)."""
    out_r, out_w = os.pipe()
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
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
    if pid_file is not None:
        _note_pid(proc.pid, pid_file)
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
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)
    return None if timed_out else proc.returncode


def run_verify(
    verify: list[str],
    cwd: Path,
    log_path: Path,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    *,
    state_root: Path | None = None,
    log_limit: int | None = None,
    header: str = "",
    pid_file: Path | None = None,
) -> str | None:
    """Run the verify gate in `cwd` with `env` (default: `verify_environment()`, the
    scrubbed one); None when it passed, else why it failed. `on_start`: see `_run_logged`.

    The log is opened from `state_root` (default: its own folder) through `state.files`, and
    starts with `header`; `pid_file` (see `pid_file_for`) notes the process while it runs.
    """
    flags = os.O_RDWR | os.O_APPEND | os.O_TRUNC
    fd = files.open_file(state_root or log_path.parent, log_path, flags)
    try:
        log = logcap.CappedLog(fd, log_limit)
        log.write(f"{header}$ {shlex.join(verify)}\n".encode())
        try:
            environment = verify_environment() if env is None else env
            code = _run_logged(verify, cwd, log, timeout_s, environment, pid_file)
        except OSError as exc:
            log.write(f"orchestrator: cannot run verify command: {exc}\n".encode())
            return f"verify command could not start ({exc}); log: {log_path}"
        last = last_line(fd)
    finally:
        os.close(fd)
    said = f" ({last})" if last else ""
    if code is None:
        return f"verify timed out after {timeout_s:g}s{said}; log: {log_path}"
    if code != 0:
        return f"verify exited with code {code}{said}; log: {log_path}"
    return None


def last_line(fd: int, limit: int = LAST_LINE_CHARS) -> str:
    """The last non-empty line the verify command printed (its summary, or its error: pytest
    says "ERROR: file or directory not found: tests/test_x.py"), shortened; "" if none."""
    try:
        size = os.fstat(fd).st_size
        tail = os.pread(fd, 4096, max(0, size - 4096)).decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in tail.splitlines()[1:] or tail.splitlines() if ln.strip()]
    if not lines or lines[-1].startswith("$ "):
        return ""
    line = lines[-1]
    return line if len(line) <= limit else line[: limit - 1] + "…"
