"""Every process an attempt started, found and stopped, including those that tried to leave.

An attempt is led by its shim, which leads its own session (and process group). An agent
can start processes outside that group (`setsid`, a shell's job control) or orphan them (a
double fork), and they used to outlive the attempt. So:

- on Linux the shim makes itself a *child subreaper* (`prctl(PR_SET_CHILD_SUBREAPER)`):
  an orphan among its descendants is re-parented to the shim instead of to init, so it
  stays findable as a descendant whatever session it moved to;
- the members of an attempt are the processes of the shim's session *and* every
  descendant of the shim (`members`), and `terminate` stops them all: SIGTERM, a grace
  period, then SIGKILL, repeated until none is left (a process forking while it is being
  killed is caught by the next round).

Elsewhere (macOS, BSD) there is no subreaper: an orphan that also left the session with
`setsid` is re-parented to init and is out of reach; processes still in the session, or
still below the shim, are stopped as on Linux. Standard library and psutil only (the shim
imports it).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable, Collection

import psutil

POLL_S = 0.05
PR_SET_CHILD_SUBREAPER = 36
KILL_ROUNDS_S = 2.0  # SIGKILL is asynchronous: how long to keep re-checking


def become_subreaper() -> bool:
    """Make this process a child subreaper (Linux); False where the platform has none."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _table() -> dict[int, tuple[int, bool]]:
    """pid -> (parent pid, is a zombie) for every process: from /proc on Linux (a few
    small reads, no objects), through psutil elsewhere."""
    table: dict[int, tuple[int, bool]] = {}
    if os.path.isdir("/proc/self"):
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as fh:
                    fields = fh.read().rpartition(b")")[2].split()
            except OSError:
                continue
            if len(fields) >= 2:
                table[int(name)] = (int(fields[1]), fields[0] in (b"Z", b"X"))
        return table
    for proc in psutil.process_iter(["ppid", "status"]):
        table[proc.pid] = (proc.info["ppid"] or 0, proc.info["status"] == psutil.STATUS_ZOMBIE)
    return table


def members(leader: int, exclude: Collection[int] = ()) -> list[int]:
    """Live (non-zombie) processes of `leader`'s session and all of `leader`'s descendants,
    `leader` included, except `exclude`. One scan of the process table."""
    children: dict[int, list[int]] = {}
    found: set[int] = set()
    for pid, (ppid, zombie) in _table().items():
        if zombie:
            continue
        children.setdefault(ppid, []).append(pid)
        try:
            if os.getsid(pid) == leader:
                found.add(pid)
        except OSError:
            continue
    stack, below = [leader], {leader}
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in below:
                below.add(child)
                stack.append(child)
    live = {pid for kids in children.values() for pid in kids}  # zombies were left out
    return sorted(pid for pid in (found | below) & live if pid not in exclude)


def signal_all(pids: Collection[int], sig: int) -> int:
    """Send `sig` to each of `pids`; how many were sent."""
    sent = 0
    for pid in pids:
        try:
            os.kill(pid, sig)
            sent += 1
        except OSError:
            pass
    return sent


def _wait_gone(
    leader: int, exclude: Collection[int], timeout_s: float, poll: Callable[[], object]
) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        poll()
        if not members(leader, exclude):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)


def terminate(
    leader: int,
    exclude: Collection[int],
    grace_s: float,
    poll: Callable[[], object] = lambda: None,
) -> None:
    """Stop every member of `leader`'s attempt but `exclude`: SIGTERM, up to `grace_s` for
    them to exit, then SIGKILL in rounds until none is left (or `KILL_ROUNDS_S` passed)."""
    if not signal_all(members(leader, exclude), signal.SIGTERM):
        return
    if _wait_gone(leader, exclude, grace_s, poll):
        return
    deadline = time.monotonic() + KILL_ROUNDS_S
    while time.monotonic() < deadline:
        poll()
        if not signal_all(members(leader, exclude), signal.SIGKILL):
            return
        time.sleep(POLL_S)


def reap_orphans(keep: int | None) -> None:
    """Collect exited children other than `keep` (the agent: its Popen collects it). A
    subreaper inherits orphans; unreaped, each would stay a zombie until the shim exits."""
    if not hasattr(os, "waitid"):
        return
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid == keep:
            return
        try:
            os.waitpid(info.si_pid, 0)
        except ChildProcessError:
            return
