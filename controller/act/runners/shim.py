"""Tiny supervisor between the controller and one agent process.

Why it exists: the controller may exit, crash or restart at any moment, yet every attempt
must still get its timeout enforced, its output logged and its exit code recorded. The shim
leads the attempt's session and writes a start record. It runs the agent's `setup` command if
any (output to its own capped log; a failure ends the attempt before the agent starts), then
the agent (stdin the prompt file or /dev/null, stdout and stderr into a pipe it copies to the
log, trimmed to `--log-limit` keeping the end: `logcap`). With `--stream` it parses the
agent's output as it passes (`agent_stream`) and keeps a stream record of its turns, last
action, cost and refusals, written before the exit record. It forwards SIGTERM/SIGINT to the
agent, stops the whole attempt on timeout, and at the end stops every process the agent left
behind -- in its session or below the shim, which is a child subreaper on Linux so that
orphans stay below it (`proctree`). Finally it writes an exit record. Records are written
atomically and every file is opened through `state.files` (no symlink in the state folder
followed), so readers see either nothing or a whole record.

Usage: python shim.py --start-record P --exit-record P --log P [--state-root DIR]
           [--log-limit BYTES] [--timeout SECONDS] [--grace SECONDS] [--stdin FILE]
           [--setup-json ARGV --setup-log P] [--stream KIND --stream-record P] -- argv...

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

import psutil  # noqa: E402

from controller.act.runners import agent_stream, logcap, proctree  # noqa: E402
from controller.state import files  # noqa: E402

DEFAULT_GRACE_S = 5.0
POLL_S = proctree.POLL_S
STREAM_WRITE_S = 0.5  # the live stream record is rewritten at most this often


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="controller.act.runners.shim")
    parser.add_argument("--start-record", type=Path, required=True)
    parser.add_argument("--exit-record", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--state-root", type=Path, default=None)
    parser.add_argument("--log-limit", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=None)
    parser.add_argument("--grace", type=float, default=DEFAULT_GRACE_S)
    parser.add_argument("--stdin", type=Path, default=None)
    parser.add_argument("--setup-json", default=None)
    parser.add_argument("--setup-log", type=Path, default=None)
    parser.add_argument("--stream", choices=sorted(agent_stream.STREAMS), default=None)
    parser.add_argument("--stream-record", type=Path, default=None)
    if "--" not in argv:
        parser.error("missing '--' before the agent's argv")
    split = argv.index("--")
    args = parser.parse_args(argv[:split])
    args.command = argv[split + 1 :]
    if not args.command:
        parser.error("empty agent argv")
    args.setup = json.loads(args.setup_json) if args.setup_json else None
    if args.setup is not None and (not args.setup or not args.setup_log):
        parser.error("--setup-json needs a non-empty argv and --setup-log")
    if bool(args.stream) != bool(args.stream_record):
        parser.error("--stream and --stream-record go together")
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


class _Output:
    """Where the agent's output goes: the capped log, and through the stream parser (if
    the agent has one), whose record is kept current on disk."""

    def __init__(self, args: argparse.Namespace, log: logcap.CappedLog) -> None:
        self.args, self.log = args, log
        self.lines = agent_stream.Lines()
        self.stream = agent_stream.STREAMS[args.stream](os.getcwd()) if args.stream else None
        self.written = 0.0

    def write(self, data: bytes) -> None:
        self.log.write(data)
        if self.stream is None:
            return
        changed = False
        for line in self.lines.feed(data):
            changed = self.stream.line(line) or changed
        if changed and time.monotonic() - self.written >= STREAM_WRITE_S:
            self.save()

    def save(self) -> None:
        if self.stream is not None:
            record = {**self.stream.record(), "updated_at": time.time()}
            write_record(self.args.state_root, self.args.stream_record, record)
            self.written = time.monotonic()


def _exit_record(returncode: int, timed_out: bool, **extra: Any) -> dict[str, Any]:
    sig = -returncode if returncode < 0 else None
    return {
        "exit_code": 128 + sig if sig else returncode,
        "ended_at": time.time(),
        "timed_out": timed_out,
        "signal": sig,
        **extra,
    }


def _wakeup_pipe() -> int:
    """A pipe that signals (SIGCHLD, SIGTERM...) write to, so one `select` sees them all."""
    read_fd, write_fd = os.pipe()
    for fd in (read_fd, write_fd):
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    return read_fd


def _start(argv: list[str], stdin: int) -> tuple[subprocess.Popen[bytes], int]:
    """`argv`, with stdout and stderr into a pipe; (process, read end)."""
    out_r, out_w = os.pipe()
    try:
        child = subprocess.Popen(argv, stdin=stdin, stdout=out_w, stderr=out_w)
    except OSError:
        os.close(out_r)
        raise
    finally:
        os.close(out_w)
    return child, out_r


def _follow(
    args: argparse.Namespace,
    child: subprocess.Popen[bytes],
    out_r: int,
    sink: Any,
    deadline: float | None,
) -> bool:
    """Copy `child`'s output into `sink` until it exits; stop the whole attempt at the
    `deadline`, and everything it left behind at its end. True if it timed out."""
    me = os.getpid()

    def exited() -> bool:
        proctree.reap_orphans(child.pid)
        return child.poll() is not None

    def keep_up() -> None:  # while stopping: keep logging, keep reaping
        exited()
        logcap.drain(out_r, sink)

    try:
        timed_out = logcap.pump(out_r, sink, exited, deadline, args.wake_fd)
        if timed_out:
            proctree.terminate(me, {me}, args.grace, keep_up)
            child.wait()
        # Leftovers (background, setsid'd, orphaned processes) must not outlive the attempt.
        proctree.terminate(me, {me}, args.grace, keep_up)
        logcap.drain(out_r, sink)
    finally:
        os.close(out_r)
        proctree.reap_orphans(None)
    return timed_out


def _setup(
    args: argparse.Namespace, log: logcap.CappedLog, deadline: float | None
) -> dict[str, Any] | None:
    """Run the agent's setup command; None when it succeeded, else the exit record."""
    shown = " ".join(args.setup)
    log.write(f"orchestrator: setup: {shown}\n".encode())
    fd = files.open_file(args.state_root, args.setup_log, os.O_RDWR | os.O_APPEND)
    try:
        try:
            child, out_r = _start(args.setup, subprocess.DEVNULL)
        except OSError as exc:
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            error = f"cannot run {args.setup[0]!r}: {exc.strerror or exc}"
            return _setup_failed(args, log, code, False, error)
        timed_out = _follow(args, child, out_r, logcap.CappedLog(fd, args.log_limit), deadline)
    finally:
        os.close(fd)
    if child.returncode == 0 and not timed_out:
        return None
    error = "timed out" if timed_out else f"`{shown}` exited with code {child.returncode}"
    return _setup_failed(args, log, child.returncode, timed_out, error)


def _setup_failed(
    args: argparse.Namespace, log: logcap.CappedLog, code: int, timed_out: bool, error: str
) -> dict[str, Any]:
    message = f"{error} (log: {args.setup_log})"
    log.write(f"orchestrator: setup failed: {message}\n".encode())
    return _exit_record(code, timed_out, setup_failed=True, setup_error=message)


def _run(args: argparse.Namespace, log: logcap.CappedLog, forwarder: _Forwarder) -> dict[str, Any]:
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    if args.setup is not None:
        failed = _setup(args, log, deadline)
        if failed is not None:
            return failed
    output = _Output(args, log)
    try:  # the prompt file: a regular file in the state folder, never a planted one
        stdin = (
            subprocess.DEVNULL
            if args.stdin is None
            else files.open_read(args.state_root, args.stdin)
        )
    except OSError as exc:
        log.write(f"orchestrator shim: cannot read the prompt {args.stdin}: {exc}\n".encode())
        return _exit_record(126, False)
    try:
        child, out_r = _start(args.command, stdin)
    except OSError as exc:
        log.write(f"orchestrator shim: cannot run {args.command[0]!r}: {exc}\n".encode())
        return _exit_record(127 if isinstance(exc, FileNotFoundError) else 126, False)
    finally:
        if args.stdin is not None:
            os.close(stdin)
    forwarder.attach(child)
    timed_out = _follow(args, child, out_r, output, deadline)
    output.save()  # the whole stream, before the exit record says "done"
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
    start = {"pid": me, "create_time": psutil.Process(me).create_time(), "started_at": time.time()}
    write_record(args.state_root, args.start_record, start)
    record = supervise(args)
    write_record(args.state_root, args.exit_record, record)
    return min(int(record["exit_code"]), 255)


if __name__ == "__main__":
    sys.exit(main())
