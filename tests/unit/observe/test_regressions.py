"""Regressions the chaos harness (`bench/chaos.py`) found in observe: worktrees an agent moved
off its task branch, or deleted, were not seen as the task's (never pruned).

Each test names the fault that exposed the bug and pins the fix, so that the harness's
figures (docs/reliability.md) stay true without rerunning it. The other layers' regression
tests sit beside their own tests: `tests/unit/*/test_regressions.py`, `tests/e2e/`.
"""

from __future__ import annotations

from pathlib import Path

from controller.model.observed import WorktreeObs
from controller.observe import leftover_dirs
from controller.observe.assemble import task_worktrees

# --- agents that switch their worktree to another branch or detach HEAD ----------------------


def test_a_worktree_moved_off_its_task_branch_is_still_the_tasks() -> None:
    root = Path("/w")
    wts = [
        WorktreeObs("/w/t1", "s1", "chaos-side/t1"),  # the agent switched branch
        WorktreeObs("/w/t2", "s2", None),  # the agent detached HEAD
        WorktreeObs("/w/det", "s3", None),  # no task branch `orchestrator/det`: not a task
        WorktreeObs("/w/t3", "s4", "orchestrator/t3"),
    ]
    found = task_worktrees(wts, root, ["t1", "t2", "t3"])
    assert set(found) == {"t1", "t2", "t3"}
    assert set(task_worktrees(wts, root)) == {"t3"}  # without branches: as before


def test_leftover_dirs_reports_only_empty_unregistered_directories(tmp_path: Path) -> None:
    (tmp_path / "gone").mkdir()  # an agent deleted its whole worktree, .git included
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "notes.txt").write_text("someone's data")
    (tmp_path / "registered").mkdir()
    registered = [WorktreeObs(str((tmp_path / "registered").resolve()), "s", "orchestrator/x")]
    found = leftover_dirs(tmp_path.resolve(), registered)
    assert [Path(w.path).name for w in found] == ["gone"] and found[0].prunable
