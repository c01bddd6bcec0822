"""Regressions the chaos harness (`bench/chaos.py`) found in the controller: verify worktrees a
killed controller left behind, and a failing merge retried in a tight loop.

Each test names the fault that exposed the bug and pins the fix, so that the harness's
figures (docs/reliability.md) stay true without rerunning it. The other layers' regression
tests sit beside their own tests: `tests/unit/*/test_regressions.py`, `tests/e2e/`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.act.merge import MergeOutcome
from controller.core.plan import MERGE, Action
from controller.loop.controller import Controller
from controller.specfile.load import load_spec
from tests.support.planning import make_spec, observed, run
from tests.support.project import Project, task
from tests.support.repo import git

pytestmark = pytest.mark.timeout(60)

# --- a killed controller's verify worktrees, and merges that keep failing -------------------


def test_a_controller_start_clears_leftover_verify_worktrees(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("a")])
    scratch = p.state / "scratch"
    scratch.mkdir(parents=True)
    git(p.repo, "worktree", "add", "-q", "--detach", str(scratch / "verify-89ab"), "main")
    with Controller(p.spec_file, load_spec(p.spec_file)):
        pass
    assert list(scratch.iterdir()) == []


class _FailingTrain:
    """A merge train whose git fails: it reports an error for its one task."""

    tasks = ("a",)

    def run(self, report: Callable[[str, MergeOutcome], None]) -> None:
        report("a", MergeOutcome("error", message="git failed"))


def test_a_failing_merge_is_retried_with_backoff_not_at_once(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("a")])
    controller = Controller(p.spec_file, load_spec(p.spec_file))
    action = Action(MERGE, "a", "merge", attempt=1)
    with controller:
        controller.merges.submit([action], _FailingTrain())  # type: ignore[arg-type]
        controller.reconciler.record_merges(controller.merges.collect(block=True))
        errors, until = controller.merges.holdoff["a"]
        assert errors == 1 and until > time.time()
        controller.reconciler.start_train([action], observed())
        assert "a" not in controller.merges.running  # held off: not submitted again yet
        wake = controller.loop.next_wake(run(make_spec([])), time.time())
        assert wake <= until - time.time() + 0.1


# --- a SIGKILL inside `git update-ref` left a lock, and every pass failed (issue 14) ----------


def merged_task_with_work(p: Project, task_id: str) -> Path:
    """A task merged on main whose worktree still holds uncommitted work: the next pass
    prunes it, archiving the work to refs/orchestrator/archive/<task>/0."""
    from controller import git as gitops

    path = gitops.ensure_worktree(p.repo, p.state / "worktrees", task_id, "main")
    (path / f"{task_id}.txt").write_text("uncommitted work\n")
    git(p.repo, "commit", "-q", "--allow-empty", "-m", f"Merge\n\nOrchestrator-Task: {task_id}")
    return path


def test_a_stale_archive_ref_lock_is_cleared_at_controller_start(tmp_path: Path) -> None:
    """`bench/chaos.py --seed 9173 --quick`: the 6th SIGKILL landed while the controller
    archived a pruned task's work, leaving `refs/orchestrator/archive/t01/1.lock`; every pass
    after that failed to prune, five times a second, until the run was killed."""
    p = Project(tmp_path, backlog=[task("t01")])
    path = merged_task_with_work(p, "t01")
    lock = p.repo / ".git" / "refs" / "orchestrator" / "archive" / "t01" / "0.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("")
    with Controller(p.spec_file, load_spec(p.spec_file)) as controller:
        controller.reconcile_once()
    assert not path.exists() and not lock.exists()
    kept = git(p.repo, "show", "refs/orchestrator/archive/t01/0:t01.txt")
    assert kept == "uncommitted work"


def test_a_failing_prune_is_held_off_with_its_reason_and_then_done(tmp_path: Path) -> None:
    """A lock that appears while the controller runs: the failed prune clears it, is held
    off (the plan shows why and until when), and the next try after the holdoff works."""
    from controller.core.plan import PRUNE
    from controller.state import holdoffs

    p = Project(tmp_path, backlog=[task("t01")])
    path = merged_task_with_work(p, "t01")
    lock = p.repo / ".git" / "refs" / "orchestrator" / "archive" / "t01" / "0.lock"
    with Controller(p.spec_file, load_spec(p.spec_file)) as controller:
        lock.parent.mkdir(parents=True)
        lock.write_text("")  # after the start-up clean-up
        controller.reconcile_once()
        assert path.exists() and not lock.exists()  # failed, and the stale lock is gone
        held = holdoffs.read(controller.store)[(PRUNE, "t01")]
        assert held.failures == 1 and "0.lock" in held.reason
        again = controller.reconcile_once()
        assert not again.actions  # held off: not tried again at once
        wait = next(w for w in again.waits if w.task == "t01")
        assert wait.reason.startswith("prune failed 1 time, next try in") and wait.until
        time.sleep(max(0.0, wait.until - time.time()) + 0.05)
        controller.reconcile_once()
        assert not path.exists()
        assert holdoffs.read(controller.store) == {}
