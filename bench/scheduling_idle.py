"""Idle CPU of `orchestrator reconcile --watch` on a converged spec, sampled with psutil.

Run as a subprocess (as a user runs it) on the spec of a finished run: after its first pass
has settled, the CPU times of the process, its reaped children and each thread are read over
a window, with the store's `last_pass` to count the passes that happened meanwhile.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from controller.state.store import Store

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Idle:
    percent: float  # of one core, the process and its reaped children
    threads: list[float]  # per thread, busiest first (psutil's 10 ms tick resolution)
    passes: int  # reconcile passes seen in the window (0 or 1: `last_pass` moved)


def idle_cpu(spec_file: Path, seconds: float) -> Idle:
    """CPU used by `orchestrator reconcile --watch` on a converged spec, after it settled."""
    # this tree's code: the environment's `orchestrator` script may be installed from another
    argv = [sys.executable, "-m", "controller"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = spec_file.parent / "idle-watch.log"
    db = spec_file.parent.parent / "state" / "orchestrator.db"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*argv, "reconcile", "--watch", "-f", str(spec_file)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=spec_file.parent.parent,
            env=env,
            start_new_session=True,
        )
    try:
        started = time.time()
        while last_pass(db) < started and time.time() - started < 30:
            time.sleep(0.1)
        time.sleep(2.0)  # let the first pass's prunes and imports settle
        ps = psutil.Process(proc.pid)
        passes0, cpu0, wall0 = last_pass(db), cpu_seconds(ps), time.monotonic()
        threads0 = {t.id: t.user_time + t.system_time for t in ps.threads()}
        time.sleep(seconds)
        cpu1, wall1 = cpu_seconds(ps), time.monotonic()
        threads1 = {t.id: t.user_time + t.system_time for t in ps.threads()}
        wall = wall1 - wall0
        per_thread = [100 * (v - threads0.get(k, 0.0)) / wall for k, v in threads1.items()]
        return Idle(
            100.0 * (cpu1 - cpu0) / wall,
            sorted(per_thread, reverse=True),
            int(last_pass(db) != passes0),
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def cpu_seconds(ps: psutil.Process) -> float:
    t = ps.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def last_pass(db: Path) -> float:
    store = Store.open_readonly(db) if db.exists() else None
    if store is None:
        return 0.0
    try:
        return float(store.get_meta("last_pass") or 0.0)
    finally:
        store.close()
