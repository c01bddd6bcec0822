"""Chaos scenario 2, `world`: the world changes under the controller.

Worktrees and branches deleted or reset by hand (while their agents run, and after their
merge), human commits on the integration branch, the database removed between two runs, and
the state directory's disk (a size-limited tmpfs, when running as root) filled up and freed.
Each change is a fault that must be handled: the task still merged once or reported, the
human's commits still on main.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.chaos_audit import Audit
from bench.chaos_procs import ProcessSampler, agent_processes
from bench.chaos_scenarios import Outcome, converge_and_stop, finish, watch_unexpected_exit
from bench.chaos_world import Project, git, read_side_log, wait_until


def mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return proc.returncode == 0


def unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill_disk(folder: Path) -> Path:
    filler = folder / "filler.bin"
    chunk = b"\0" * (1 << 20)
    with contextlib.suppress(OSError), filler.open("wb") as fh:
        while True:
            fh.write(chunk)
            fh.flush()
    with contextlib.suppress(OSError), filler.open("ab") as fh:  # the last few bytes too
        while True:
            fh.write(b"\0" * 4096)
            fh.flush()
    return filler


def first_start(p: Project, tasks: set[str], timeout: float = 30) -> str | None:
    """Wait for the first agent start of one of `tasks`; its id."""
    found: list[str] = []

    def check() -> bool:
        for run in read_side_log(p.side_log_path).runs:
            if run.task in tasks:
                found.append(run.task)
                return True
        return False

    wait_until(check, timeout, step=0.02)
    return found[0] if found else None


@dataclass
class _Tampered:
    """Which tasks the scenario tampered with, and what it did, for the final judgement."""

    ids: list[str]
    victim: str | None = None  # worktree deleted while its agent ran
    deleted: str | None = None  # branch deleted while its agent ran
    reset: str | None = None  # branch reset while its agent ran
    merged: list[str] = field(default_factory=list)  # merged tasks, branches then tampered
    humans: list[str] = field(default_factory=list)  # shas of human commits on main ("": none)
    filled: bool = False  # the state disk was filled up


def scenario_world(root: Path, rng: random.Random, quick: bool) -> Outcome:
    started = time.monotonic()
    state = root / "state"
    on_tmpfs = mount_tmpfs(state, "6m")
    p = Project(root, rng, state_dir="../state", worktree_root="../worktrees")
    outcome = Outcome("world", Audit("world"))
    t = _Tampered([f"w{i:02d}" for i in range(8 if quick else 16)])
    p.write_spec(p.base_spec(_world_backlog(t.ids, rng), maxParallel=3))
    sampler = ProcessSampler().start()
    proc = p.start_controller()
    _tamper_while_running(p, t)
    proc = _remove_database(p, proc, rng, outcome)
    t.humans.append(_human_commit(p, 2))
    _tamper_after_merge(p, t, outcome)
    # the state directory's disk fills up under the running controller, then frees again
    if on_tmpfs:
        filler = fill_disk(p.state)
        t.filled = True
        time.sleep(4)
        filler.unlink()
    t.humans.append(_human_commit(p, 3))
    # a rejected task's worktree removed by hand while nothing runs there
    wait_until(lambda: (p.worktrees / "wrej").is_dir() and "wrej" not in running_tasks(), 30)
    shutil.rmtree(p.worktrees / "wrej", ignore_errors=True)
    converge_and_stop(p, outcome.audit, timeout=180, proc=proc)
    _judge(p, t, outcome)
    finish(p, sampler, outcome, exempt_writes=[t.victim] if t.victim else [])
    if on_tmpfs:
        shutil.copytree(state, root / "state-copy", symlinks=True, dirs_exist_ok=True)
        unmount(state)
    outcome.seconds = time.monotonic() - started
    return outcome


def _world_backlog(ids: list[str], rng: random.Random) -> list[dict[str, Any]]:
    backlog = [
        {
            "id": t,
            "agent": "dev",
            "prompt": f"sleep {rng.uniform(0.8, 1.6):.2f}\n"
            f"write tasks/{t}/{t}.txt: {t}\ncommit {t}",
            "paths": [f"tasks/{t}/**"],
        }
        for t in ids
    ]
    backlog.append(
        {"id": "wrej", "agent": "dev", "prompt": "write nope.txt: x\ncommit x", "paths": ["a/**"]}
    )
    return backlog


def _human_commit(p: Project, n: int) -> str:
    """A person commits on main meanwhile; judged at the end: still on main? Its sha or ""."""
    ok = p.human_commit(f"human/{n}.txt", f"human {n}\n", f"human commit {n}")
    return git(p.repo, "log", "-1", "--format=%H", "--", f"human/{n}.txt") if ok else ""


def _tamper_while_running(p: Project, t: _Tampered) -> None:
    ids = t.ids
    # a running agent's worktree deleted by hand
    t.victim = first_start(p, set(ids[:3]))
    if t.victim:
        shutil.rmtree(p.worktrees / t.victim, ignore_errors=True)
    t.humans.append(_human_commit(p, 1))
    # a running task's branch deleted, another's reset, before their agents commit
    t.deleted = first_start(p, set(ids[3:5]) - {t.victim})
    if t.deleted:
        git(p.repo, "update-ref", "-d", f"refs/heads/orchestrator/{t.deleted}", check=False)
    t.reset = first_start(p, set(ids[5:7]) - {t.victim, t.deleted})
    if t.reset:
        git(p.repo, "update-ref", f"refs/heads/orchestrator/{t.reset}", "main~1", check=False)


def _remove_database(
    p: Project, proc: subprocess.Popen[bytes], rng: random.Random, outcome: Outcome
) -> subprocess.Popen[bytes]:
    """The database removed between two runs; returns the new controller."""
    time.sleep(rng.uniform(0.5, 1.5))
    watch_unexpected_exit(p, proc, outcome.audit)
    p.kill_controller(proc, group=False)
    for name in ("orchestrator.db", "orchestrator.db-wal", "orchestrator.db-shm"):
        (p.state / name).unlink(missing_ok=True)
    proc = p.start_controller()
    wait_until(lambda: "watching" in p.controller_output(proc), 20)
    return proc


def _tamper_after_merge(p: Project, t: _Tampered, outcome: Outcome) -> None:
    """A merged task's branch deleted, another merged one reset to before its work."""
    wait_until(lambda: len(p.merges()) >= 2, 40)
    t.merged = [task for task in p.merges() if task in t.ids]
    if t.merged:
        git(p.repo, "branch", "-D", f"orchestrator/{t.merged[0]}", check=False)
        outcome.faults.setdefault("branch-deleted-after-merge", [0, 0])[0] += 1
    if len(t.merged) > 1:
        git(p.repo, "update-ref", f"refs/heads/orchestrator/{t.merged[1]}", "main~3", check=False)
        outcome.faults.setdefault("branch-reset-after-merge", [0, 0])[0] += 1


def _judge(p: Project, t: _Tampered, outcome: Outcome) -> None:
    """Was each change to the world handled?"""
    merges = p.merges()
    on_main = set(git(p.repo, "rev-list", "main").split())
    status = p.status()
    for key, task in (
        ("worktree-deleted-while-running", t.victim),
        ("branch-deleted-while-running", t.deleted),
        ("branch-reset-while-running", t.reset),
    ):
        if task:  # merged once or, its branch tampered with, reported with the reason
            row = status.get(task, {})
            reported = row.get("phase") in ("rejected", "failed") and bool(row.get("reason"))
            outcome.fault(key, merges.get(task, 0) == 1 or (key.startswith("branch") and reported))
    for key in ("branch-deleted-after-merge", "branch-reset-after-merge"):
        if key in outcome.faults:
            outcome.faults[key][1] += int(all(merges.get(m, 0) == 1 for m in t.merged[:2]))
    outcome.fault("worktree-deleted-while-idle", merges.get("wrej", 0) == 0)
    for sha in t.humans:
        outcome.fault("human-commit-on-main", bool(sha) and sha in on_main)
    settled = all(merges.get(i, 0) == 1 for i in t.ids if i not in (t.deleted, t.reset))
    if t.filled:
        outcome.fault("state-disk-full", settled)
    outcome.fault("database-removed", settled)


def running_tasks() -> set[str]:
    return {task for task, _ in agent_processes().values()}
