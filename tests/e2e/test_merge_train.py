"""End-to-end: the merge train in the real controller, and conflicts seen early.

A batch verified once and landed by one move of main; a controller SIGKILLed while a batch
verifies, then restarted: its orphaned verify run is stopped, its scratch worktree removed,
and every task lands exactly once; a conflict predicted while the agent still runs, shown by
`status -o json` and `diff`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.support.project import (
    Project,
    fake_agents_running,
    kill_fake_agents,
    stop_process,
    task,
    wait_until,
)
from tests.support.repo import git

pytestmark = pytest.mark.timeout(120)

# notes its pid and the commit it verifies; sleeps while the `slow` flag file exists
VERIFY = """
import os, subprocess, sys, time
notes, slow = sys.argv[1], sys.argv[2]
sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
with open(notes, "a") as f:
    f.write(f"{os.getpid()} {sha}\\n")
while os.path.exists(slow):
    time.sleep(0.1)
"""


@pytest.fixture(autouse=True)
def _no_leftover_agents(tmp_path: Path):
    yield
    kill_fake_agents(tmp_path)


def verify_runs(notes: Path) -> list[tuple[int, str]]:
    if not notes.exists():
        return []
    return [(int(p), sha) for p, sha in (line.split() for line in notes.read_text().splitlines())]


def main_positions(p: Project) -> list[str]:
    return git(p.repo, "reflog", "show", "--format=%H", "refs/heads/main").split()[::-1]


def train_project(tmp_path: Path, n: int) -> tuple[Project, Path, Path]:
    notes, slow = tmp_path / "verify-runs.txt", tmp_path / "slow"
    tasks = [task(f"t{i}", f"sleep 0.5\nwrite t{i}.txt: {i}\ncommit t{i}") for i in range(n)]
    p = Project(
        tmp_path,
        maxParallel=n,
        mergeQueue={"batch": n},
        verify=[sys.executable, "-c", VERIFY, str(notes), str(slow)],
        backlog=tasks,
    )
    return p, notes, slow


def test_a_batch_is_verified_once_and_lands_by_one_move(tmp_path: Path) -> None:
    p, notes, slow = train_project(tmp_path, 4)
    slow.write_text("hold the first verify until every agent has finished\n")
    proc = p.watch()
    try:
        assert wait_until(lambda: len(p.agent_ends()) == 4, timeout=40)
        assert wait_until(lambda: verify_runs(notes), timeout=20)
        before = main_positions(p)
        slow.unlink()
        assert wait_until(lambda: len(p.merges()) == 4, timeout=40)
    finally:
        stop_process(proc)
    assert sorted(p.merges()) == ["t0", "t1", "t2", "t3"]
    runs = verify_runs(notes)
    # a first train may have started before the last agent finished; never one run per task
    assert len(runs) <= 2
    after = main_positions(p)
    assert len(after) - len(before) == len(runs)  # one move per verify run
    assert after[-1] == runs[-1][1]  # main points at the commit verify passed


def test_sigkill_during_a_batch_verify_then_restart_lands_each_task_once(tmp_path: Path) -> None:
    p, notes, slow = train_project(tmp_path, 3)
    slow.write_text("verify hangs until this file is removed\n")
    start = main_positions(p)
    proc = p.watch()
    try:
        assert wait_until(lambda: len(p.agent_ends()) == 3, timeout=40)
        assert wait_until(lambda: verify_runs(notes), timeout=20)
        time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the controller; its verify leads its own session
        proc.wait()
    orphan = verify_runs(notes)[0][0]
    assert psutil.pid_exists(orphan)  # the verify run outlived the controller
    assert main_positions(p) == start and p.merges() == []  # nothing landed mid-verify
    scratch = p.state / "scratch"
    assert any(x.name.startswith("verify-") for x in scratch.iterdir())
    proc = p.watch()
    try:
        # stopped by the new controller (still hanging: it would exit once `slow` is gone)
        assert wait_until(lambda: not psutil.pid_exists(orphan), timeout=10)
        slow.unlink()
        assert wait_until(lambda: len(p.merges()) == 3, timeout=40)
        time.sleep(0.5)
    finally:
        out = stop_process(proc)
    assert "Traceback" not in out
    assert sorted(p.merges()) == ["t0", "t1", "t2"]  # each exactly once
    assert [x.name for x in scratch.iterdir()] == []
    assert git(p.repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    events = p.cli("events", "-o", "json")
    kinds = {e["kind"] for e in json.loads(events.stdout)}
    assert {"verify_stopped", "scratch_cleared"} <= kinds


def test_a_predicted_conflict_shows_in_status_and_diff(tmp_path: Path) -> None:
    prompt = "write shared.txt: from the agent\ncommit agent edit\nsleep 30"
    p = Project(
        tmp_path, backlog=[{**task("edit", prompt), "paths": ["shared.txt"]}], pollInterval="1s"
    )
    proc = p.watch()
    try:
        assert wait_until(lambda: "edit" in fake_agents_running(p.tmp), timeout=15)
        assert wait_until(
            lambda: git(p.repo, "log", "-1", "--format=%s", "orchestrator/edit") == "agent edit",
            timeout=15,
        )
        (p.repo / "shared.txt").write_text("from a human\n")
        git(p.repo, "add", "shared.txt")
        git(p.repo, "commit", "-q", "-m", "human edit")

        def predicted() -> dict | None:
            out = p.cli("status", "-o", "json")
            rows = {t["task"]: t for t in json.loads(out.stdout)["tasks"]}
            row = rows.get("edit")
            return row if row and row["conflicts"] == ["shared.txt"] else None

        assert wait_until(lambda: predicted() is not None, timeout=20)
        row = predicted()
        assert row is not None and row["phase"] == "running"
        assert "will conflict with main in shared.txt" in row["reason"]
        diff = p.cli("diff")
        assert "will conflict with main in shared.txt" in diff.stdout
        wide = {**p.env(), "COLUMNS": "200", "LINES": "24"}
        dashboard = subprocess.run(
            [sys.executable, "-m", "controller", "dashboard", "--once", "-f", str(p.spec_file)],
            capture_output=True,
            text=True,
            env=wide,
            cwd=p.tmp,
            timeout=60,
        )
        assert "will conflict with main in shared.txt" in dashboard.stdout, dashboard.stdout
    finally:
        stop_process(proc)
