"""Regressions the chaos harness (`bench/chaos.py`) found end to end: a full disk crashed the
watch loop (the controller runs in this process, with a real agent process), and an alias bomb
hung the loader and so the watch loop (`validate` runs as a process, which a hang cannot stop).

Each test names the fault that exposed the bug and pins the fix, so that the harness's
figures (docs/reliability.md) stay true without rerunning it. The other layers' regression
tests sit beside their own tests: `tests/unit/*/test_regressions.py`, `tests/e2e/`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from controller.loop.controller import Controller
from controller.specfile.load import load_spec
from tests.support import ROOT
from tests.support.project import Project, task, wait_until

pytestmark = pytest.mark.timeout(60)

# --- the watch loop under a full disk ---------------------------------------------------------


def test_watch_survives_a_pass_that_fails_with_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = Project(tmp_path, backlog=[task("a", "sleep 0.1")])
    controller = Controller(p.spec_file, load_spec(p.spec_file))
    real = controller.reconciler.run_pass
    calls = {"n": 0}

    def flaky(*, sync_merges: bool):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] <= 2:
            raise sqlite3.OperationalError("database or disk is full")
        return real(sync_merges=sync_merges)

    monkeypatch.setattr(controller.reconciler, "run_pass", flaky)
    with controller:
        assert controller.watch(max_seconds=2.5) == 0
    assert calls["n"] > 2


# --- an alias bomb fed to the loader (bad-input scenario; the guard is in spec_load) -----------

ALIAS_BOMB = """apiVersion: orchestrator/v1
agents:
  dev: {command: [agent], owns: ["**"]}
x-anchors:
  a: &a [x, x, x, x, x, x, x, x, x, x]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
"""


def test_an_alias_bomb_is_rejected_quickly(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(ALIAS_BOMB)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "controller", "validate", "-f", str(spec)],
            capture_output=True,
            text=True,
            timeout=10,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    except subprocess.TimeoutExpired:
        pytest.fail("validate still running after 10 s")
    assert result.returncode == 1 and "spec.yaml:" in result.stderr


# --- the verify command of a SIGKILLed controller (issue 14, finding 3) ------------------------


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_killed_controllers_verify_command_is_stopped_at_the_next_start(
    tmp_path: Path,
) -> None:
    """The verify command leads its own session, so a SIGKILL to the controller (and its
    process group) leaves it running, with no timeout; its scratch worktree was cleared at
    the next start, the process was not. Now the store records it like an agent, and the
    next controller stops it (and what it started) before clearing the scratch."""
    pid_file, child_file = tmp_path / "verify.pid", tmp_path / "child.pid"
    script = (  # the first verify run hangs (with a child); a later one passes at once
        "import os, subprocess, sys, time\n"
        f"if os.path.exists({str(pid_file)!r}): sys.exit(0)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(child_file)!r}, 'w').write(str(child.pid))\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(120)\n"
    )
    p = Project(tmp_path, backlog=[task("a")], verify=[sys.executable, "-c", script])
    proc = p.watch()
    pids: list[int] = []
    try:
        assert wait_until(lambda: pid_file.exists() and child_file.exists(), timeout=30)
        time.sleep(0.2)  # both files written in full
        pids = [int(pid_file.read_text()), int(child_file.read_text())]
        os.killpg(proc.pid, signal.SIGKILL)  # the controller and its git children
        proc.wait()
        assert not any(_gone(pid) for pid in pids)  # left running by the kill
        again = p.cli("reconcile")
        assert again.returncode == 0, again.stderr
        assert wait_until(lambda: all(_gone(pid) for pid in pids), timeout=10)
        events = p.cli("events", "-o", "json").stdout
        assert "verify_stopped" in events and f"pid {pids[0]}" in events
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- admission flapped: one CPU sample taken during the command's own git calls (issue 14) -----


def test_repeated_diff_plans_with_the_controllers_published_load(tmp_path: Path) -> None:
    """Four `diff` runs used to plan 4, 4, 3 and 1 slots: each took one 0.1 s CPU sample while
    its own git calls ran. A controller pass now publishes the load average it plans with
    (measured between its passes, without its own git calls), and while a controller runs,
    `diff` and `status` use that value: repeated runs plan the same."""
    import json

    from controller.state.lock import ControllerLock

    p = Project(
        tmp_path,
        backlog=[task("a", "sleep 30"), task("b", dependsOn=["a"])],
        resources={"cpu": [{"below": 40, "parallel": 4}, {"parallel": 1}]},
    )
    first = p.cli("reconcile")  # one pass: starts `a`, publishes its load reading
    assert first.returncode == 0, first.stderr
    db = p.state / "orchestrator.db"
    con = sqlite3.connect(db)
    try:
        row = con.execute("SELECT value FROM controller WHERE key = 'resources'").fetchone()
        assert row is not None and {"cpu", "memory", "at"} <= set(json.loads(row[0]))
        # a controller runs (holds the lock) and last published 87.5% CPU
        value = {"cpu": 87.5, "memory": 12.0, "at": time.time()}
        con.execute("UPDATE controller SET value = ? WHERE key = 'resources'", (json.dumps(value),))
        con.commit()
    finally:
        con.close()
    from controller.observe.running import lock_path

    # a controller runs on this repository and state folder (holds the repository's lock)
    with ControllerLock(lock_path(p.repo), {"state": str(p.state)}):
        plans = [json.loads(p.cli("diff", "-o", "json").stdout) for _ in range(4)]
        status = json.loads(p.cli("status", "-o", "json").stdout)
    admissions = [plan["admission"] for plan in plans]
    # the same load every time (the disk's figures are read fresh: other processes write)
    load = [(a["cpu_percent"], a["memory_percent"], a["limit"]) for a in admissions]
    assert all(x == load[0] for x in load), admissions
    assert admissions[0]["cpu_percent"] == 87.5 and admissions[0]["limit"] == 1
    assert status["resources"]["cpu_percent"] == 87.5
    p.cli("stop", "--force")
