"""Regressions the chaos harness (`bench/chaos.py`) found in git operations: removing a
worktree an agent had moved off its branch lost the commits only its HEAD held, and
half-added worktrees, verify worktrees and half-written registrations that a killed
controller left behind broke later passes.

Each test names the fault that exposed the bug and pins the fix, so that the harness's
figures (docs/reliability.md) stay true without rerunning it. The other layers' regression
tests sit beside their own tests: `tests/unit/*/test_regressions.py`, `tests/e2e/`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from controller import git as gitops
from controller.git.worktrees import ADD_LOCK_REASON
from controller.model import names
from tests.support.repo import git

pytestmark = pytest.mark.timeout(60)


# --- agents that switch their worktree to another branch or detach HEAD ----------------------


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
    (admin / "locked").write_text(ADD_LOCK_REASON)
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
    (scratch / "verify-4567.pid").write_text("{}")  # its verify run's note
    # a note a kill left half-written (found by the chaos run, seed 2)
    (scratch / ".verify-89ab.pid.15730.tmp").write_text("")
    assert gitops.clear_scratch(git_repo, scratch) == 2
    assert list(scratch.iterdir()) == []
    assert "verify-" not in git(git_repo, "worktree", "list")


def test_a_registration_left_half_written_by_a_kill_is_repaired(
    git_repo: Path, tmp_path: Path
) -> None:
    """SIGKILL inside `git worktree add` can leave `commondir` empty; `git worktree list`
    then fails on every pass, forever (found by the SIGKILL end-to-end test)."""
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


# --- lock files a killed git left behind (issue 14: a SIGKILL inside `update-ref`) ------------


def test_a_stale_lock_is_removed_and_a_held_one_is_not(git_repo: Path) -> None:
    """A `.lock` that no live process can hold is removed; while a git process works in the
    repository the lock stays, and the report names that process."""
    repo = gitops.open_repo(git_repo)
    lock = git_repo / ".git" / "refs" / "orchestrator" / "archive" / "t01" / "1.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("")
    holder = subprocess.Popen(
        ["git", "-C", str(git_repo), "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        report = gitops.clear_stale_locks(repo, "main", [git_repo.parent / "worktrees"])
        assert report.removed == [] and lock.exists()
        assert report.held == {lock: [holder.pid]}
        assert f"may be held by pid {holder.pid}" in report.describe_held()
    finally:
        holder.kill()
        holder.wait()
    report = gitops.clear_stale_locks(repo, "main", [git_repo.parent / "worktrees"])
    assert report.removed == [lock] and not lock.exists() and report.held == {}
    git(git_repo, "update-ref", "refs/orchestrator/archive/t01/1", "main")  # usable again


def test_locks_of_task_worktrees_and_branches_are_candidates_others_are_not(
    git_repo: Path,
) -> None:
    root = git_repo.parent / "worktrees"
    path = gitops.ensure_worktree(git_repo, root, "t1", "main")
    admin = Path(git(path, "rev-parse", "--absolute-git-dir"))
    mine = [
        admin / "index.lock",
        git_repo / ".git" / "refs" / "heads" / "orchestrator" / "t1.lock",
        git_repo / ".git" / "refs" / "heads" / "main.lock",
        git_repo / ".git" / "packed-refs.lock",
    ]
    others = [git_repo / ".git" / "refs" / "heads" / "feature.lock", git_repo / ".git" / "x.lock"]
    for lock in mine + others:
        lock.write_text("")
    found = gitops.clear_stale_locks(gitops.open_repo(git_repo), "main", [root]).removed
    assert sorted(found) == sorted(mine)
    assert all(lock.exists() for lock in others)  # not the controller's to judge


# --- a kill inside `git worktree add` / `git worktree remove` (issue 14) ----------------------


def test_a_worktree_added_without_its_git_file_is_added_again(git_repo: Path) -> None:
    """Killed inside `git worktree add` after the registration but before the `.git` file:
    `worktree remove` then refused ("is not a .git file") on every retry, and the task was
    never started again (found by test_controller_sigkilled_midway_converges_after_restart)."""
    root = git_repo.parent / "worktrees"
    path = half_add(git_repo, root, "t1")
    (path / ".git").unlink()
    assert gitops.ensure_worktree(git_repo, root, "t1", "main") == path
    assert (path / "README.md").exists() and (path / ".git").is_file()
    assert gitops.remove_worktree(git_repo, root, "t1", 1) is None
    assert not path.exists() and str(path) not in git(git_repo, "worktree", "list")


def test_a_removal_interrupted_by_a_kill_is_finished(git_repo: Path) -> None:
    """Removal renames the worktree aside first; what a kill leaves there is finished at the
    next prune (a half-deleted directory without its `.git` file can no longer arise)."""
    root = git_repo.parent / "worktrees"
    aside = root / ".removing-t9-0123abcd"
    (aside / "deep").mkdir(parents=True)
    (aside / "deep" / "file.txt").write_text("left by a kill\n")
    outside = git_repo.parent / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not ours\n")
    (aside / "link").symlink_to(outside)
    gitops.ensure_worktree(git_repo, root, "t1", "main")
    gitops.remove_worktree(git_repo, root, "t1", 1)
    assert sorted(p.name for p in root.iterdir()) == []
    assert (outside / "keep.txt").read_text() == "not ours\n"  # a link is never followed
