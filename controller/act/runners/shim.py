"""Tiny supervisor between the controller and one agent process.

Why it exists: the controller may exit, crash or restart at any moment, yet every attempt
must still get its timeout enforced and its exit code recorded. The shim leads the attempt's
process group, writes a start record, runs the agent's `setup` command if any (output to
its own log; a failure ends the attempt before the agent starts), runs the agent (stdin the
prompt file or /dev/null, output appended to the log), forwards SIGTERM/SIGINT to it, kills
the group on timeout, and finally writes an exit record. With `--stream`, it follows the
agent's output as it runs (`agent_stream`) and keeps a stream record of its turns, last
action, cost and refusals, written before the exit record. Records are written atomically
(tmp file + os.replace), so readers see either nothing or a whole record.

Usage: python -m controller.act.runners.shim --start-record P --exit-record P --log P
           [--timeout SECONDS] [--grace SECONDS] [--stdin FILE]
           [--setup-json ARGV --setup-log P] [--stream KIND --stream-record P] -- argv...

Imports only the standard library, psutil and its sibling `agent_stream`, so it starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO

import psutil

if __package__:  # imported by the controller (the local runner uses the helpers below)
    from controller.act.runners import agent_stream
else:  # run by file path (see `local`): its own folder is first on sys.path
    import agent_stream  # type: ignore[no-redef]

DEFAULT_GRACE_S = 5.0
POLL_S = 0.05
STREAM_POLL_S = 0.2  # how often the agent's stream is read while it runs
STREAM_WRITE_S = 0.5  # the live stream record is rewritten at most this often


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def group_members(pgid: int, exclude: Collection[int] = ()) -> list[int]:
    """Live (non-zombie) processes of process group `pgid`, except `exclude`."""
    members: list[int] = []
    for pid in psutil.pids():
        if pid in exclude:
            continue
        try:
            if os.getpgid(pid) != pgid or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                continue
        except (OSError, psutil.Error):
            continue
        members.append(pid)
    return members


def signal_members(pgid: int, sig: int, exclude: Collection[int] = ()) -> int:
    """Send `sig` to every live member of group `pgid` except `exclude`; how many were sent."""
    sent = 0
    for pid in group_members(pgid, exclude):
        try:
            os.kill(pid, sig)
            sent += 1
        except OSError:
            pass
    return sent


def _wait_members_gone(
    pgid: int, exclude: Collection[int], timeout_s: float, poll: Callable[[], object]
) -> bool:
    """Wait until group `pgid` has no live members besides `exclude`; True if it emptied."""
    deadline = time.monotonic() + timeout_s
    while True:
        poll()
        if not group_members(pgid, exclude):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)


def terminate_members(
    pgid: int, exclude: Collection[int], grace_s: float, poll: Callable[[], object]
) -> None:
    """SIGTERM the group (but not `exclude`), wait up to `grace_s`, then SIGKILL what is left."""
    if not signal_members(pgid, signal.SIGTERM, exclude):
        return
    if not _wait_members_gone(pgid, exclude, grace_s, poll):
        signal_members(pgid, signal.SIGKILL, exclude)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="controller.act.runners.shim")
    parser.add_argument("--start-record", type=Path, required=True)
    parser.add_argument("--exit-record", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
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


def _exit_record(returncode: int, timed_out: bool, **extra: Any) -> dict[str, Any]:
    sig = -returncode if returncode < 0 else None
    return {
        "exit_code": 128 + sig if sig else returncode,
        "ended_at": time.time(),
        "timed_out": timed_out,
        "signal": sig,
        **extra,
    }


def _wait(
    child: subprocess.Popen[bytes],
    deadline: float | None,
    grace: float,
    tick: Callable[[], object] | None = None,
) -> bool:
    """Wait for the agent (calling `tick` every `STREAM_POLL_S` meanwhile, if given); at the
    `deadline` (monotonic) kill its group, not this shim. True if it timed out."""
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        step = (
            left if tick is None else (STREAM_POLL_S if left is None else min(left, STREAM_POLL_S))
        )
        try:
            child.wait(timeout=None if step is None else max(0.0, step))
            return False
        except subprocess.TimeoutExpired:
            pass
        if tick is not None:
            tick()
        if deadline is not None and time.monotonic() >= deadline:
            break
    me = os.getpid()
    terminate_members(os.getpgid(0), {me}, grace, child.poll)
    child.wait()
    return True


class _StreamWriter:
    """Follows the agent's stream in its log and keeps its record current on disk."""

    def __init__(self, args: argparse.Namespace, offset: int) -> None:
        self.path: Path = args.stream_record
        self.tail = agent_stream.Tail(args.log, args.stream, offset, os.getcwd())
        self.written = 0.0

    def tick(self) -> None:
        if self.tail.poll() and time.monotonic() - self.written >= STREAM_WRITE_S:
            self.write()

    def write(self) -> None:
        record = {**self.tail.stream.record(), "updated_at": time.time()}
        write_json_atomic(self.path, record)
        self.written = time.monotonic()


def _setup(
    args: argparse.Namespace, deadline: float | None, log: BinaryIO
) -> dict[str, Any] | None:
    """Run the agent's setup command; None when it succeeded, else the exit record."""
    shown = " ".join(args.setup)
    log.write(f"orchestrator: setup: {shown}\n".encode())
    log.flush()
    args.setup_log.parent.mkdir(parents=True, exist_ok=True)
    with args.setup_log.open("ab") as out:
        try:
            proc = subprocess.Popen(
                args.setup, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        except OSError as exc:
            error = f"cannot run {args.setup[0]!r}: {exc.strerror or exc}"
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            return _setup_failed(log, code, False, error, args.setup_log)
        timed_out = _wait(proc, deadline, args.grace)
    if proc.returncode == 0 and not timed_out:
        return None
    error = "timed out" if timed_out else f"`{shown}` exited with code {proc.returncode}"
    return _setup_failed(log, proc.returncode, timed_out, error, args.setup_log)


def _setup_failed(
    log: BinaryIO, code: int, timed_out: bool, error: str, setup_log: Path
) -> dict[str, Any]:
    message = f"{error} (log: {setup_log})"
    log.write(f"orchestrator: setup failed: {message}\n".encode())
    return _exit_record(code, timed_out, setup_failed=True, setup_error=message)


def supervise(args: argparse.Namespace) -> dict[str, Any]:
    """Run the agent to completion and return its exit record."""
    forwarder = _Forwarder()
    signal.signal(signal.SIGTERM, forwarder)
    signal.signal(signal.SIGINT, forwarder)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    with args.log.open("ab") as log:
        if args.setup is not None:
            failed = _setup(args, deadline, log)
            if failed is not None:
                return failed
        stream = _StreamWriter(args, log.tell()) if args.stream else None
        try:
            with _stdin(args.stdin) as stdin:
                child = subprocess.Popen(
                    args.command, stdin=stdin, stdout=log, stderr=subprocess.STDOUT
                )
        except OSError as exc:
            log.write(f"orchestrator shim: cannot run {args.command[0]!r}: {exc}\n".encode())
            return _exit_record(127 if isinstance(exc, FileNotFoundError) else 126, False)
        forwarder.attach(child)
        timed_out = _wait(child, deadline, args.grace, stream.tick if stream else None)
    # Leftovers (background processes the agent started) must not outlive the attempt.
    terminate_members(os.getpgid(0), {os.getpid()}, args.grace, lambda: None)
    if stream is not None:  # the whole stream, before the exit record says "done"
        stream.tail.poll()
        stream.write()
    return _exit_record(child.returncode, timed_out)


@contextlib.contextmanager
def _stdin(path: Path | None) -> Iterator[int | BinaryIO]:
    """The agent's stdin: the prompt file (read from its start), else /dev/null."""
    if path is None:
        yield subprocess.DEVNULL
        return
    with path.open("rb") as fh:
        yield fh


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    me = os.getpid()
    if os.getpgid(0) != me:
        os.setsid()  # always lead our own group, so a timeout kill never hits the caller
    write_json_atomic(
        args.start_record,
        {"pid": me, "create_time": psutil.Process(me).create_time(), "started_at": time.time()},
    )
    record = supervise(args)
    write_json_atomic(args.exit_record, record)
    return min(int(record["exit_code"]), 255)


if __name__ == "__main__":
    sys.exit(main())
