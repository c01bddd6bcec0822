"""Regression tests for the failures the chaos harness (`bench/chaos.py`) found.

Each test names the fault that exposed the bug and pins the fix, so that the harness's
figures (docs/reliability.md) stay true without rerunning it: controller crashes that used
up a task's retries, worktrees an agent moved off its branch that were never pruned and
whose commits were lost on removal, verify worktrees and half-added worktrees left by a
killed controller, a merge of a branch with no common history retried forever, a full disk
that crashed the watch loop, and a failing merge retried in a tight loop.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from controller.act.executor import MergeJob
from controller.act.merge import MergeOutcome, land_task
from controller.core.lifecycle import is_free, task_state
from controller.core.plan import MERGE, Action
from controller.git import ops as gitops
from controller.loop.controller import Controller
from controller.model import names
from controller.model.observed import WorktreeObs
from controller.observe import leftover_dirs, task_worktrees
from controller.specfile.load import load_spec
from tests.conftest import git
from tests.e2e import Project, task
from tests.planning import NOW, action_of, attempt, failed, make_spec, observed, run

pytestmark = pytest.mark.timeout(60)


# --- controller killed between the intent row and the launch (crash scenario) ----------------


def lost_before_start(task_id: str, number: int) -> object:
    return attempt(
        task_id,
        number,
        created_at=NOW - 100,
        outcome="lost",
        reason="the controller stopped before the agent started",
    )


def test_an_attempt_lost_before_its_agent_started_does_not_use_up_retries() -> None:
    crashed = lost_before_start("a", 1)
    assert is_free(crashed)  # type: ignore[arg-type]
    assert not is_free(failed("a", 1))
    # retries: 0 -> one attempt allowed; the crash-lost one must not count
    state = task_state((crashed,), merged=False, now=NOW, max_attempts=1)  # type: ignore[arg-type]
    assert state.stage == "failed"
    spec = make_spec(["a"], retries=0, backoff={"initial": "1s", "max": "1s"})
    step = action_of(run(spec, observed([crashed])), "a")  # type: ignore[list-item]
    assert step is not None and step.kind == "retry" and step.attempt == 2
    # a launch that failed for a reason of its own still counts
    spawn_failed = attempt("a", 1, created_at=NOW - 100, outcome="failed", reason="could not")
    assert not is_free(spawn_failed)


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


def test_removing_a_worktree_archives_commits_only_its_head_holds(git_repo: Path) -> None:
    root = git_repo.parent / "worktrees"
    path = gitops.ensure_worktree(git_repo, root, "t1", "main")
    git(path, "checkout", "-q", "--detach")
    (path / "detached.txt").write_text("work on a detached HEAD\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "detached work")
    sha = git(path, "rev-parse", "HEAD")
    ref = gitops.remove_worktree(git_repo, root, "t1", 1)
    assert ref == names.archive_ref("t1", 1)
    assert git(git_repo, "rev-parse", ref) == sha
    assert not path.exists()


def test_removing_a_worktree_on_its_branch_archives_nothing(git_repo: Path) -> None:
    root = git_repo.parent / "worktrees"
    path = gitops.ensure_worktree(git_repo, root, "t1", "main")
    (path / "t1.txt").write_text("committed\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "t1")
    assert gitops.remove_worktree(git_repo, root, "t1", 1) is None


# --- controller killed during `git worktree add` or during a verify ---------------------------


def half_add(repo: Path, root: Path, task_id: str) -> Path:
    """A worktree as `git worktree add` leaves it when killed: git's own lock still on."""
    path = gitops.ensure_worktree(repo, root, task_id, "main")
    admin = Path(git(path, "rev-parse", "--absolute-git-dir"))
    (admin / "locked").write_text(gitops.ADD_LOCK_REASON)
    (path / "README.md").unlink()  # its checkout never completed
    return path


def test_a_half_added_worktree_is_added_again_before_an_agent_uses_it(git_repo: Path) -> None:
    root = git_repo.parent / "worktrees"
    path = half_add(git_repo, root, "t1")
    assert gitops.ensure_worktree(git_repo, root, "t1", "main") == path
    assert (path / "README.md").exists()  # a complete checkout
    assert "locked" not in git(git_repo, "worktree", "list", "--porcelain")


def test_a_half_added_worktree_can_be_pruned(git_repo: Path) -> None:
    root = git_repo.parent / "worktrees"
    path = half_add(git_repo, root, "t1")
    gitops.remove_worktree(git_repo, root, "t1", 1)  # used to fail: "cannot remove a locked"
    assert not path.exists()
    assert str(path) not in git(git_repo, "worktree", "list")


def test_verify_worktrees_of_a_killed_controller_are_cleared(git_repo: Path) -> None:
    scratch = git_repo.parent / "state" / "scratch"
    scratch.mkdir(parents=True)
    git(git_repo, "worktree", "add", "-q", "--detach", str(scratch / "verify-0123"), "main")
    (scratch / "verify-4567").mkdir()  # its registration already pruned
    assert gitops.clear_scratch(git_repo, scratch) == 2
    assert list(scratch.iterdir()) == []
    assert "verify-" not in git(git_repo, "worktree", "list")


def test_a_controller_start_clears_leftover_verify_worktrees(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("a")])
    scratch = p.state / "scratch"
    scratch.mkdir(parents=True)
    git(p.repo, "worktree", "add", "-q", "--detach", str(scratch / "verify-89ab"), "main")
    with Controller(p.spec_file, load_spec(p.spec_file)):
        pass
    assert list(scratch.iterdir()) == []


# --- a task branch deleted by hand while its agent ran (world scenario) ----------------------


def test_a_branch_without_common_history_is_rejected_not_retried_forever(
    git_repo: Path, tmp_path: Path
) -> None:
    # the agent's commit after its branch was deleted: a new root commit
    git(git_repo, "checkout", "-q", "--orphan", "orchestrator/t1")
    (git_repo / "t1.txt").write_text("work\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "root commit")
    git(git_repo, "checkout", "-q", "-f", "main")
    outcome = land_task(
        git_repo,
        integration="main",
        task="t1",
        title="t1",
        attempt=1,
        worktree=None,
        scope=["**"],
        verify=None,
        verify_timeout_s=10,
        verify_log=tmp_path / "verify.log",
        scratch_root=tmp_path / "scratch",
    )
    assert outcome.kind == "rejected" and "no history" in outcome.message


def test_a_merge_that_errors_is_an_error_not_a_race(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> MergeOutcome:
        raise gitops.GitError(["git", "merge-tree"], 128, "fatal: something is broken")

    monkeypatch.setattr("controller.act.executor.land_task", broken)
    job = MergeJob(
        action=Action(MERGE, "t1", "merge", attempt=1),
        repo=tmp_path,
        integration="main",
        title="t1",
        worktree=None,
        scope=["**"],
        verify=None,
        verify_timeout_s=10,
        verify_log=tmp_path / "v.log",
        scratch_root=tmp_path / "scratch",
    )
    outcome = job.run()
    assert outcome.kind == "error" and "something is broken" in outcome.message


# --- the watch loop under a full disk, and merges that keep failing --------------------------


def test_watch_survives_a_pass_that_fails_with_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = Project(tmp_path, backlog=[task("a", "sleep 0.1")])
    controller = Controller(p.spec_file, load_spec(p.spec_file))
    real = controller.run_pass
    calls = {"n": 0}

    def flaky(*, sync_merges: bool):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] <= 2:
            raise sqlite3.OperationalError("database or disk is full")
        return real(sync_merges=sync_merges)

    monkeypatch.setattr(controller, "run_pass", flaky)
    with controller:
        assert controller.watch(max_seconds=2.5) == 0
    assert calls["n"] > 2


def test_a_failing_merge_is_retried_with_backoff_not_at_once(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("a")])
    controller = Controller(p.spec_file, load_spec(p.spec_file))
    action = Action(MERGE, "a", "merge", attempt=1)
    with controller:
        future: Future[MergeOutcome] = Future()
        future.set_result(MergeOutcome("error", message="git failed"))
        controller.merging["a"] = (action, future)
        controller._collect_merges(block=False)
        errors, until = controller.merge_holdoff["a"]
        assert errors == 1 and until > time.time()
        controller._carry_out(action, observed(), sync_merges=False)
        assert "a" not in controller.merging  # held off: not submitted again yet
        assert controller._next_wake(run(make_spec([])), time.time()) <= until - time.time() + 0.1


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
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        )
    except subprocess.TimeoutExpired:
        pytest.fail("validate still running after 10 s")
    assert result.returncode == 1 and "spec.yaml:" in result.stderr


def test_a_registration_left_half_written_by_a_kill_is_repaired(
    git_repo: Path, tmp_path: Path
) -> None:
    """SIGKILL inside `git worktree add` can leave `commondir` empty; `git worktree list`
    then fails on every pass, forever (found by the SIGKILL end-to-end test)."""
    from controller.git import ops as gitops

    wt = tmp_path / "wt" / "t3"
    subprocess.run(
        ["git", "-C", str(git_repo), "worktree", "add", "-q", "-b", "orchestrator/t3", str(wt)],
        check=True,
    )
    (git_repo / ".git" / "worktrees" / "t3" / "commondir").write_text("")
    broken = subprocess.run(["git", "-C", str(git_repo), "worktree", "list"], capture_output=True)
    assert broken.returncode != 0  # the failure the controller met
    assert gitops.repair_worktree_registrations(git_repo) == ["t3"]
    listed = subprocess.run(
        ["git", "-C", str(git_repo), "worktree", "list", "--porcelain"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(wt) in listed
    assert gitops.repair_worktree_registrations(git_repo) == []  # nothing left to repair
