"""Tiny supervisor between the controller and one agent process.

Why it exists: the controller may exit, crash or restart at any moment, yet every attempt
must still get its timeout enforced and its exit code recorded. The shim leads the attempt's
process group, writes a start record, runs the agent (stdin /dev/null, output appended to
the log), forwards SIGTERM/SIGINT to it, kills the group on timeout, and finally writes an
exit record. Records are written atomically (tmp file + os.replace), so readers see either
nothing or a whole record.

Usage: python -m controller.act.runners.shim --start-record P --exit-record P --log P
           [--timeout SECONDS] [--grace SECONDS] -- argv...

Imports only the standard library and psutil, so it starts fast.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

DEFAULT_GRACE_S = 5.0
POLL_S = 0.05


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
    if "--" not in argv:
        parser.error("missing '--' before the agent's argv")
    split = argv.index("--")
    args = parser.parse_args(argv[:split])
    args.command = argv[split + 1 :]
    if not args.command:
        parser.error("empty agent argv")
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


def _wait(child: subprocess.Popen[bytes], timeout: float | None, grace: float) -> bool:
    """Wait for the agent; on timeout kill its group (not this shim). True if it timed out."""
    try:
        child.wait(timeout=timeout)
        return False
    except subprocess.TimeoutExpired:
        pass
    me = os.getpid()
    terminate_members(os.getpgid(0), {me}, grace, child.poll)
    child.wait()
    return True


def supervise(args: argparse.Namespace) -> dict[str, Any]:
    """Run the agent to completion and return its exit record."""
    forwarder = _Forwarder()
    signal.signal(signal.SIGTERM, forwarder)
    signal.signal(signal.SIGINT, forwarder)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    with args.log.open("ab") as log:
        try:
            child = subprocess.Popen(
                args.command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        except OSError as exc:
            log.write(f"orchestrator shim: cannot run {args.command[0]!r}: {exc}\n".encode())
            return _exit_record(127 if isinstance(exc, FileNotFoundError) else 126, False)
        forwarder.attach(child)
        timed_out = _wait(child, args.timeout, args.grace)
    # Leftovers (background processes the agent started) must not outlive the attempt.
    terminate_members(os.getpgid(0), {os.getpid()}, args.grace, lambda: None)
    return _exit_record(child.returncode, timed_out)


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
