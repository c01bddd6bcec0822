"""Tiny supervisor between the controller and one agent process.

Why it exists: the controller may exit, crash or restart at any moment, yet every attempt
must still get its timeout enforced, its output logged and its exit code recorded. The shim
leads the attempt's session, writes a start record, runs the agent (stdin /dev/null, stdout
and stderr into a pipe it copies to the log, trimmed to `--log-limit` keeping the end:
`logcap`), forwards SIGTERM/SIGINT to it, stops the whole attempt on timeout, and at the end
stops every process the agent left behind -- in its session or below the shim, which is a
child subreaper on Linux so that orphans stay below it (`proctree`). Finally it writes an
exit record. Records are written atomically and every file is opened through `state.files`
(no symlink in the state folder followed), so readers see either nothing or a whole record.

Usage: python shim.py --start-record P --exit-record P --log P [--state-root DIR]
           [--log-limit BYTES] [--timeout SECONDS] [--grace SECONDS] -- argv...

Imports only the standard library, psutil and stdlib-only modules of this package, so it
starts fast. Run by file path, it puts its own package first on sys.path: never a copy of
the package in the agent's worktree (its working directory).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

if not __package__:  # run by file path: this package, not one found elsewhere
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from controller.act.runners import logcap, proctree  # noqa: E402
from controller.state import files, identity  # noqa: E402

DEFAULT_GRACE_S = 5.0
POLL_S = proctree.POLL_S


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="controller.act.runners.shim")
    parser.add_argument("--start-record", type=Path, required=True)
    parser.add_argument("--exit-record", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--state-root", type=Path, default=None)
    parser.add_argument("--log-limit", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=None)
    parser.add_argument("--grace", type=float, default=DEFAULT_GRACE_S)
    if "--" not in argv:
        parser.error("missing '--' before the agent's argv")
    split = argv.index("--")
    args = parser.parse_args(argv[:split])
    args.command = argv[split + 1 :]
    if not args.command:
        parser.error("empty agent argv")
    if args.state_root is None:  # the state folder holding the log and both records
        paths = [str(p.absolute()) for p in (args.log, args.start_record, args.exit_record)]
        args.state_root = Path(os.path.commonpath(paths))
    return args


class _Forwarder:
    """Signal handler that forwards SIGTERM/SIGINT to the agent (remembered until it starts)."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self.pending: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.pending = signum
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)

    def attach(self, child: subprocess.Popen[bytes]) -> None:
        self.child = child
        if self.pending is not None:
            child.send_signal(self.pending)


def _exit_record(returncode: int, timed_out: bool) -> dict[str, Any]:
    sig = -returncode if returncode < 0 else None
    return {
        "exit_code": 128 + sig if sig else returncode,
        "ended_at": time.time(),
        "timed_out": timed_out,
        "signal": sig,
    }


def _wakeup_pipe() -> int:
    """A pipe that signals (SIGCHLD, SIGTERM...) write to, so one `select` sees them all."""
    read_fd, write_fd = os.pipe()
    for fd in (read_fd, write_fd):
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    return read_fd


def _start(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], int]:
    """The agent, with stdout and stderr into a pipe; (process, read end)."""
    out_r, out_w = os.pipe()
    try:
        child = subprocess.Popen(args.command, stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w)
    except OSError:
        os.close(out_r)
        raise
    finally:
        os.close(out_w)
    return child, out_r


def _run(args: argparse.Namespace, log: logcap.CappedLog, forwarder: _Forwarder) -> dict[str, Any]:
    try:
        child, out_r = _start(args)
    except OSError as exc:
        log.write(f"orchestrator shim: cannot run {args.command[0]!r}: {exc}\n".encode())
        return _exit_record(127 if isinstance(exc, FileNotFoundError) else 126, False)
    forwarder.attach(child)
    me = os.getpid()

    def exited() -> bool:
        proctree.reap_orphans(child.pid)
        return child.poll() is not None

    def keep_up() -> None:  # while stopping: keep logging, keep reaping
        exited()
        logcap.drain(out_r, log)

    try:
        deadline = None if args.timeout is None else time.monotonic() + args.timeout
        timed_out = logcap.pump(out_r, log, exited, deadline, args.wake_fd)
        if timed_out:
            proctree.terminate(me, {me}, args.grace, keep_up)
            child.wait()
        # Leftovers (background, setsid'd, orphaned processes) must not outlive the attempt.
        proctree.terminate(me, {me}, args.grace, keep_up)
        logcap.drain(out_r, log)
    finally:
        os.close(out_r)
        proctree.reap_orphans(None)
    return _exit_record(child.returncode, timed_out)


def supervise(args: argparse.Namespace) -> dict[str, Any]:
    """Run the agent to completion and return its exit record."""
    forwarder = _Forwarder()
    signal.signal(signal.SIGTERM, forwarder)
    signal.signal(signal.SIGINT, forwarder)
    args.wake_fd = _wakeup_pipe()
    proctree.become_subreaper()
    log_fd = files.open_file(args.state_root, args.log, os.O_RDWR | os.O_APPEND)
    try:
        return _run(args, logcap.CappedLog(log_fd, args.log_limit), forwarder)
    finally:
        os.close(log_fd)


def write_record(root: Path, path: Path, data: dict[str, Any]) -> None:
    files.write_atomic(root, path, json.dumps(data).encode())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    me = os.getpid()
    if os.getpgid(0) != me:
        os.setsid()  # always lead our own session, so a timeout kill never hits the caller
    me_id = identity.identify(me)
    start = {
        "pid": me,
        "create_time": me_id.create_time,
        "start_id": me_id.start_id,
        "started_at": time.time(),
    }
    write_record(args.state_root, args.start_record, start)
    record = supervise(args)
    write_record(args.state_root, args.exit_record, record)
    return min(int(record["exit_code"]), 255)


if __name__ == "__main__":
    sys.exit(main())
