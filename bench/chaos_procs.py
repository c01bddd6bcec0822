"""The process table as the chaos harness reads it: `/proc` directly, never the controller.

`ProcessSampler` reads the process table at a high rate (a thread reading `/proc` directly,
cheaper than psutil per sample) and remembers, for every chaos agent process, when it was
first and last seen, and every moment two agent processes of the same task were alive at once.
`processes_under` finds whatever a scenario left running.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.chaos_world import AGENT


def _cmdline(pid: str) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().decode(errors="replace").split("\0")
    except OSError:
        return []


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode(errors="replace")
        return int(stat.rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _still_agent(pid: int, task: str, others: list[int]) -> bool:
    """`pid` still runs the agent for `task` and is not the fork of another agent pid."""
    argv = _cmdline(str(pid))
    if len(argv) < 4 or argv[1] != AGENT or argv[2] != task:
        return False
    parent = _ppid(pid)
    return parent is not None and parent not in others


def agent_processes() -> dict[int, tuple[str, int]]:
    """pid -> (task, attempt) of every live chaos agent process (zombies have no cmdline)."""
    found: dict[int, tuple[str, int]] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        argv = _cmdline(pid)
        if len(argv) >= 4 and argv[1] == AGENT and argv[3].isdigit():
            found[int(pid)] = (argv[2], int(argv[3]))
    return found


@dataclass
class Seen:
    task: str
    attempt: int
    first: float
    last: float


@dataclass
class ProcessSampler:
    """Samples the process table every `interval` seconds on a thread (see module doc)."""

    interval: float = 0.01
    seen: dict[int, Seen] = field(default_factory=dict)
    duplicates: list[tuple[float, str, tuple[int, ...]]] = field(default_factory=list)
    samples: int = 0
    started: float = 0.0
    stopped: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ProcessSampler:
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="chaos-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.stopped = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        now = time.time()
        procs = agent_processes()
        self.samples += 1
        by_task: dict[str, list[int]] = {}
        for pid, (task, attempt) in procs.items():
            s = self.seen.get(pid)
            if s is None or s.task != task:
                self.seen[pid] = Seen(task, attempt, now, now)
            else:
                s.last = now
            by_task.setdefault(task, []).append(pid)
        for task, pids in by_task.items():
            if len(pids) < 2:
                continue
            # a child between fork and exec still shows its parent's argv: not a second agent.
            # Look again: a forked child has exec'd (or gone) by now, or names its parent.
            real = tuple(sorted(p for p in pids if _still_agent(p, task, pids)))
            if len(real) > 1:
                self.duplicates.append((now, task, real))


def _ancestors() -> set[int]:
    """This process's parents (e.g. a `timeout` wrapper whose argv names the work folder)."""
    found, pid = set(), os.getppid()
    while pid > 1 and pid not in found:
        found.add(pid)
        pid = _ppid(pid) or 0
    return found


def processes_under(root: Path, exclude: Iterable[int] = ()) -> list[tuple[int, str]]:
    """Live processes whose argv or cwd mention `root`, or that run the agent or shim."""
    skip = {os.getpid(), *exclude, *_ancestors()}
    needle = str(root)
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in skip:
            continue
        argv = _cmdline(pid)
        if not argv or not argv[0]:
            continue  # kernel thread or zombie
        text = " ".join(argv)
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            cwd = ""
        if needle in text or cwd.startswith(needle):
            found.append((int(pid), text[:160]))
    return found
