"""gitops against real repositories: worktrees, snapshots, archive refs, merge primitives."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from controller import git as gitops
from controller.git import runner
from controller.model import names
from tests.support.repo import git


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "worktrees"


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD")


def commit_file(repo: Path, rel: str, text: str, message: str = "change") -> str:
    (repo / rel).parent.mkdir(parents=True, exist_ok=True)
    (repo / rel).write_text(text)
    git(repo, "add", rel)
    git(repo, "commit", "-q", "-m", message)
    return head(repo)


def status(worktree: Path) -> str:
    return git(worktree, "status", "--porcelain", "--untracked-files=all")


def test_git_error_carries_details(git_repo: Path) -> None:
    place = gitops.open_repo(git_repo).place
    with pytest.raises(gitops.GitError) as info:
        gitops.run(place, "rev-parse", "--verify", "no-such-ref")
    assert info.value.returncode != 0
    assert info.value.argv[0] == "git"
    assert f"--git-dir={git_repo.resolve()}/.git" in info.value.argv
    assert "core.hooksPath=/dev/null" in info.value.argv
    assert not gitops.run(place, "rev-parse", "no-such-ref", check=False).ok


def test_rev_parse(git_repo: Path) -> None:
    assert gitops.rev_parse(git_repo, "main") == head(git_repo)
    assert gitops.rev_parse(git_repo, "refs/heads/nope") is None


def test_ensure_worktree_is_idempotent(git_repo: Path, root: Path) -> None:
    base = head(git_repo)
    path = gitops.ensure_worktree(git_repo, root, "t1", base)
    assert path == (root / "t1").resolve()
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD") == "orchestrator/t1"
    commit_file(path, "a.txt", "work\n")
    tip = head(path)
    assert gitops.ensure_worktree(git_repo, root, "t1", base) == path
    # an existing branch is never moved back to the base
    assert gitops.rev_parse(git_repo, "orchestrator/t1") == tip
    assert gitops.worktree_for_branch(git_repo, "orchestrator/t1") == path


def test_ensure_worktree_new_takes_one_call_and_falls_back(git_repo: Path, root: Path) -> None:
    base = head(git_repo)
    gitops.rev_parse(git_repo, base)  # the repository resolved, its config read (both cached)
    before = runner.calls
    path = gitops.ensure_worktree(git_repo, root, "t1", base, new=True)
    assert runner.calls - before == 1  # `worktree add -b`
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD") == "orchestrator/t1"
    tip = commit_file(path, "a.txt", "work\n")
    # told "new" wrongly (the branch and worktree exist): the usual checks take over
    assert gitops.ensure_worktree(git_repo, root, "t1", base, new=True) == path
    assert gitops.rev_parse(git_repo, "orchestrator/t1") == tip


def test_a_stale_branch_lock_of_a_killed_controller_does_not_block_a_start(
    git_repo: Path, root: Path
) -> None:
    base = head(git_repo)
    lock = git_repo / ".git" / "refs" / "heads" / "orchestrator" / "t1.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(base + "\n")  # left by `git branch` killed mid-way
    path = gitops.ensure_worktree(git_repo, root, "t1", base, new=True)
    assert gitops.rev_parse(git_repo, "orchestrator/t1") == base and path.exists()
    assert not lock.exists()


def test_ensure_worktree_recovers_after_dir_deleted_by_hand(git_repo: Path, root: Path) -> None:
    base = head(git_repo)
    path = gitops.ensure_worktree(git_repo, root, "t1", base)
    shutil.rmtree(path)
    again = gitops.ensure_worktree(git_repo, root, "t1", base)
    assert again == path and (path / "README.md").exists()


def test_ensure_worktree_reuses_empty_dir_but_refuses_unknown_content(
    git_repo: Path, root: Path
) -> None:
    base = head(git_repo)
    (root / "t1").mkdir(parents=True)
    assert (gitops.ensure_worktree(git_repo, root, "t1", base) / "README.md").exists()
    (root / "t2").mkdir()
    (root / "t2" / "precious.txt").write_text("keep me")
    with pytest.raises(gitops.WorktreeError):
        gitops.ensure_worktree(git_repo, root, "t2", base)
    assert (root / "t2" / "precious.txt").read_text() == "keep me"


def test_snapshot_captures_work_without_touching_worktree(git_repo: Path, root: Path) -> None:
    path = gitops.ensure_worktree(git_repo, root, "t1", head(git_repo))
    place = gitops.worktree_place(gitops.open_repo(git_repo), path)
    assert gitops.snapshot(git_repo, place, "t1", 1) is None
    (path / "README.md").write_text("modified\n")
    (path / "new").mkdir()
    (path / "new" / "untracked.txt").write_text("untracked\n")
    (path / "staged.txt").write_text("staged\n")
    git(path, "add", "staged.txt")
    before = (status(path), head(path), (path / ".git").read_text())
    ref = gitops.snapshot(git_repo, place, "t1", 1)
    assert ref == names.archive_ref("t1", 1)
    assert (status(path), head(path), (path / ".git").read_text()) == before
    assert git(git_repo, "show", f"{ref}:README.md") == "modified"
    assert git(git_repo, "show", f"{ref}:new/untracked.txt") == "untracked"
    assert git(git_repo, "show", f"{ref}:staged.txt") == "staged"
    assert git(git_repo, "rev-parse", f"{ref}^") == head(path)
    assert git(git_repo, "log", "-1", "--format=%an <%ae>", ref) == (
        "orchestrator <orchestrator@localhost>"
    )
    # a second snapshot under the same number gets a fresh name instead of overwriting
    (path / "README.md").write_text("modified again\n")
    second = gitops.snapshot(git_repo, place, "t1", 1)
    assert second == f"{ref}-2"
    assert git(git_repo, "show", f"{ref}:README.md") == "modified"


def test_remove_worktree_archives_dirty_work_and_keeps_branch(git_repo: Path, root: Path) -> None:
    path = gitops.ensure_worktree(git_repo, root, "t1", head(git_repo))
    tip = commit_file(path, "done.txt", "committed\n")
    (path / "wip.txt").write_text("not committed\n")
    ref = gitops.remove_worktree(git_repo, root, "t1", 2)
    assert ref == names.archive_ref("t1", 2)
    assert not path.exists()
    assert git(git_repo, "show", f"{ref}:wip.txt") == "not committed"
    assert gitops.rev_parse(git_repo, "orchestrator/t1") == tip
    assert gitops.worktree_for_branch(git_repo, "orchestrator/t1") is None
    # idempotent: the second call finds nothing to do
    assert gitops.remove_worktree(git_repo, root, "t1", 2) is None


def test_remove_worktree_clean_needs_no_archive(git_repo: Path, root: Path) -> None:
    path = gitops.ensure_worktree(git_repo, root, "t1", head(git_repo))
    assert gitops.remove_worktree(git_repo, root, "t1", 1) is None
    assert not path.exists()
    assert git(git_repo, "for-each-ref", "refs/orchestrator/") == ""


def test_refuses_paths_outside_root(git_repo: Path, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    root.mkdir()
    (root / "t1").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match="outside"):
        gitops.ensure_worktree(git_repo, root, "t1", head(git_repo))
    with pytest.raises(ValueError, match="outside"):
        gitops.remove_worktree(git_repo, root, "t1", 1)
    with pytest.raises(ValueError, match="outside"):
        gitops.reset_task_branch(git_repo, root, "t1", head(git_repo), 1)
    assert (outside / "precious.txt").read_text() == "keep me"
    assert gitops.rev_parse(git_repo, "orchestrator/t1") is None


def test_reset_task_branch_archives_tip_and_work(git_repo: Path, root: Path) -> None:
    base = head(git_repo)
    path = gitops.ensure_worktree(git_repo, root, "t1", base)
    old_tip = commit_file(path, "old.txt", "old attempt\n")
    (path / "wip.txt").write_text("wip\n")
    new_base = commit_file(git_repo, "main.txt", "integration moved\n")
    gitops.reset_task_branch(git_repo, root, "t1", new_base, 1)
    assert head(path) == new_base == gitops.rev_parse(git_repo, "orchestrator/t1")
    assert status(path) == ""
    archived = git(
        git_repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/orchestrator"
    )
    refs = dict(line.split() for line in archived.splitlines())
    snap, tip_ref = names.archive_ref("t1", 1), names.archive_ref("t1", 1) + "-2"
    assert git(git_repo, "show", f"{snap}:wip.txt") == "wip"
    assert refs[tip_ref] == old_tip


def test_reset_task_branch_without_worktree(git_repo: Path, root: Path) -> None:
    base = head(git_repo)
    gitops.ensure_worktree(git_repo, root, "t1", base)
    old_tip = commit_file(root / "t1", "old.txt", "x\n")
    gitops.remove_worktree(git_repo, root, "t1", 1)
    new_base = commit_file(git_repo, "main.txt", "y\n")
    gitops.reset_task_branch(git_repo, root, "t1", new_base, 2)
    assert gitops.rev_parse(git_repo, "orchestrator/t1") == new_base
    assert gitops.rev_parse(git_repo, names.archive_ref("t1", 2)) == old_tip


def test_landed_changes_lists_what_the_merge_result_changes(git_repo: Path) -> None:
    commit_file(git_repo, "old/name.txt", "content\n")
    commit_file(git_repo, "gone.txt", "bye\n")
    git(git_repo, "checkout", "-q", "-b", "feature")
    (git_repo / "new").mkdir()
    git(git_repo, "mv", "old/name.txt", "new/name.txt")
    git(git_repo, "rm", "-q", "gone.txt")
    git(git_repo, "commit", "-q", "-m", "rename and delete")
    commit_file(git_repo, "added file.txt", "sp\n")
    git(git_repo, "checkout", "-q", "main")
    old = commit_file(git_repo, "main-only.txt", "m\n")
    merged = gitops.merge_tree(git_repo, "main", "feature")
    assert merged.tree is not None
    changes = gitops.landed_changes(git_repo, old, merged.tree)
    assert sorted(c.path for c in changes) == [
        "added file.txt",
        "gone.txt",
        "new/name.txt",
        "old/name.txt",
    ]
    assert {c.path: c.status for c in changes}["gone.txt"] == "D"


def test_merge_tree_clean_and_conflict(git_repo: Path) -> None:
    base = head(git_repo)
    git(git_repo, "checkout", "-q", "-b", "a")
    commit_file(git_repo, "a.txt", "a\n")
    commit_file(git_repo, "README.md", "from a\n")
    git(git_repo, "checkout", "-q", "-b", "b", base)
    commit_file(git_repo, "b.txt", "b\n")
    clean = gitops.merge_tree(git_repo, "a", "b")
    assert clean.tree and clean.conflicts == ()
    assert git(git_repo, "ls-tree", "--name-only", clean.tree).split() == [
        "README.md",
        "a.txt",
        "b.txt",
    ]
    commit_file(git_repo, "README.md", "from b\n")
    conflict = gitops.merge_tree(git_repo, "a", "b")
    assert conflict.tree is None and conflict.conflicts == ("README.md",)
    assert git(git_repo, "status", "--porcelain") == ""  # nothing touched


def test_commit_tree_and_cas_update_ref(git_repo: Path) -> None:
    old = head(git_repo)
    tree = git(git_repo, "rev-parse", "HEAD^{tree}")
    new = gitops.commit_tree(git_repo, tree, [old], "msg\n\nTrailer: x\n")
    assert git(git_repo, "log", "-1", "--format=%B", new) == "msg\n\nTrailer: x"
    assert gitops.cas_update_ref(git_repo, "refs/heads/integ", new, "") is True
    assert gitops.cas_update_ref(git_repo, "refs/heads/integ", old, old) is False  # stale old
    assert gitops.rev_parse(git_repo, "integ") == new
    assert gitops.cas_update_ref(git_repo, "refs/heads/integ", old, new) is True
    assert gitops.rev_parse(git_repo, "integ") == old
    assert "orchestrator: land" in git(git_repo, "reflog", "show", "integ")


def test_has_uncommitted(git_repo: Path) -> None:
    place = gitops.open_repo(git_repo).place
    assert not gitops.has_uncommitted(place)
    (git_repo / ".gitignore").write_text("ignored.txt\n")
    assert gitops.has_uncommitted(place)
    assert not gitops.has_uncommitted(place, untracked_too=False)
    commit_file(git_repo, ".gitignore", "ignored.txt\n")
    (git_repo / "ignored.txt").write_text("x")
    assert not gitops.has_uncommitted(place)
    (git_repo / "README.md").write_text("changed")
    assert gitops.has_uncommitted(place, untracked_too=False)


def test_commit_leftovers_with_stale_index_lock(git_repo: Path, root: Path) -> None:
    path = gitops.ensure_worktree(git_repo, root, "t1", head(git_repo))
    place = gitops.worktree_place(gitops.open_repo(git_repo), path)
    assert gitops.commit_leftovers(git_repo, place, "orchestrator/t1", "nothing") is None
    (path / "left.txt").write_text("left behind\n")
    git_dir = Path(git(path, "rev-parse", "--absolute-git-dir"))
    lock = git_dir / "index.lock"
    lock.write_text("")
    old = time.time() - 60
    os.utime(lock, (old, old))
    sha = gitops.commit_leftovers(git_repo, place, "orchestrator/t1", "t1: leftovers")
    assert sha == head(path) == gitops.rev_parse(git_repo, "orchestrator/t1")
    assert not lock.exists()
    assert status(path) == ""
    assert git(path, "log", "-1", "--format=%an|%s") == "orchestrator|t1: leftovers"


def test_commit_leftovers_waits_out_a_young_lock(git_repo: Path, root: Path) -> None:
    path = gitops.ensure_worktree(git_repo, root, "t1", head(git_repo))
    (path / "left.txt").write_text("x\n")
    lock = Path(git(path, "rev-parse", "--absolute-git-dir")) / "index.lock"
    lock.write_text("")
    started = time.monotonic()
    place = gitops.worktree_place(gitops.open_repo(git_repo), path)
    leftovers = gitops.commit_leftovers(git_repo, place, "orchestrator/t1", "m", stale_lock_s=0.3)
    assert leftovers is not None
    assert 0.25 < time.monotonic() - started < 5


def test_scratch_worktree_is_always_removed(git_repo: Path, tmp_path: Path) -> None:
    scratch_root = tmp_path / "scratch"
    sha = head(git_repo)
    with pytest.raises(RuntimeError), gitops.scratch_worktree(git_repo, scratch_root, sha) as p:
        assert p.parent == scratch_root.resolve()
        assert git(p, "rev-parse", "HEAD") == sha
        (p / "junk").write_text("x")
        raise RuntimeError("boom")
    assert list(scratch_root.iterdir()) == []
    assert len(gitops.list_worktrees(git_repo)) == 1
