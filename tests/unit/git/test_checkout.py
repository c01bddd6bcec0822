"""Fast-forwarding the integration branch where it is checked out: as safe as the swap.

Each race is staged at the one moment that matters -- inside the move, after the checks, by
wrapping the dirty check the move makes under its index lock -- with a real git process
doing what a user would do at that moment.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from controller import git as gitops
from controller.git import checkout
from tests.support.repo import GIT_ENV, git


def commit_file(repo: Path, rel: str, text: str) -> str:
    (repo / rel).write_text(text)
    git(repo, "add", rel)
    git(repo, "commit", "-q", "-m", f"add {rel}")
    return git(repo, "rev-parse", "HEAD")


def descendant(repo: Path) -> tuple[str, str]:
    """(main's tip, a commit on top of it holding x.txt) -- main and its files unmoved."""
    old = git(repo, "rev-parse", "main")
    git(repo, "checkout", "-q", "-b", "ahead")
    new = commit_file(repo, "x.txt", "x\n")
    git(repo, "checkout", "-q", "main")
    return old, new


def clean_at(repo: Path, sha: str) -> bool:
    """The checkout's index and files are exactly `sha`'s tree."""
    index = subprocess.run(["git", "-C", str(repo), "diff-index", "--cached", "--quiet", sha])
    files = subprocess.run(["git", "-C", str(repo), "diff-files", "--quiet"])
    return index.returncode == 0 and files.returncode == 0


def no_leftovers(repo: Path) -> bool:
    gitdir = repo / ".git"
    return not (gitdir / "index.lock").exists() and not list(gitdir.glob("index.orchestrator-*"))


def test_fast_forward_moves_branch_files_and_index(git_repo: Path) -> None:
    old, new = descendant(git_repo)
    (git_repo / "notes.txt").write_text("untracked, kept\n")
    place = gitops.open_repo(git_repo).place
    checkout.fast_forward_checkout(place, "main", new, old)
    assert git(git_repo, "rev-parse", "main") == new
    assert (git_repo / "x.txt").read_text() == "x\n" and (git_repo / "notes.txt").exists()
    assert clean_at(git_repo, new) and no_leftovers(git_repo)
    assert "orchestrator: land" in git(git_repo, "reflog", "show", "-1", "main")


def test_not_a_fast_forward_is_refused(git_repo: Path) -> None:
    old, _ = descendant(git_repo)
    git(git_repo, "checkout", "-q", "-b", "diverged", f"{old}~0")
    other = commit_file(git_repo, "y.txt", "y\n")
    git(git_repo, "checkout", "-q", "main")
    new = commit_file(git_repo, "z.txt", "z\n")
    place = gitops.open_repo(git_repo).place
    with pytest.raises(gitops.CheckoutRefused):
        checkout.fast_forward_checkout(place, "main", other, new)
    assert git(git_repo, "rev-parse", "main") == new and clean_at(git_repo, new)
    assert no_leftovers(git_repo)


def test_a_branch_reset_before_the_move_is_not_fast_forwarded(git_repo: Path) -> None:
    """`git merge --ff-only` would have moved main from wherever it was reset to."""
    ancestor = git(git_repo, "rev-parse", "main")
    old = commit_file(git_repo, "a.txt", "a\n")
    _, new = descendant(git_repo)
    git(git_repo, "reset", "-q", "--hard", ancestor)  # the user, just before the move
    place = gitops.open_repo(git_repo).place
    with pytest.raises(gitops.CheckoutRefused) as refused:
        checkout.fast_forward_checkout(place, "main", new, old)
    assert refused.value.raced
    assert git(git_repo, "rev-parse", "main") == ancestor and clean_at(git_repo, ancestor)


def _during_the_move(monkeypatch: pytest.MonkeyPatch, act: object) -> None:
    real = checkout.is_dirty

    def dirty_check_then_act(place: gitops.Place) -> bool:
        result = real(place)
        act()  # type: ignore[operator]
        return result

    monkeypatch.setattr(checkout, "is_dirty", dirty_check_then_act)


def test_a_user_command_during_the_move_is_refused_by_the_index_lock(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_file(git_repo, "a.txt", "a\n")
    old, new = descendant(git_repo)
    tried: list[subprocess.CompletedProcess[str]] = []
    env = {**os.environ, **GIT_ENV}

    def user_resets() -> None:
        argv = ["git", "-C", str(git_repo), "reset", "-q", "--hard", "HEAD~1"]
        tried.append(subprocess.run(argv, capture_output=True, text=True, env=env))

    _during_the_move(monkeypatch, user_resets)
    checkout.fast_forward_checkout(gitops.open_repo(git_repo).place, "main", new, old)
    assert tried and tried[0].returncode != 0 and "index.lock" in tried[0].stderr
    assert git(git_repo, "rev-parse", "main") == new and clean_at(git_repo, new)
    assert no_leftovers(git_repo)


def test_a_ref_moved_during_the_move_wins_and_the_files_are_put_back(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = descendant(git_repo)
    racer = git(git_repo, "commit-tree", f"{old}^{{tree}}", "-p", old, "-m", "racer")

    def someone_updates_the_ref() -> None:  # a ref-only update takes no index lock
        git(git_repo, "update-ref", "refs/heads/main", racer, old)

    _during_the_move(monkeypatch, someone_updates_the_ref)
    with pytest.raises(gitops.CheckoutRefused) as refused:
        checkout.fast_forward_checkout(gitops.open_repo(git_repo).place, "main", new, old)
    assert refused.value.raced
    assert git(git_repo, "rev-parse", "main") == racer  # nothing overwritten
    assert clean_at(git_repo, old) and not (git_repo / "x.txt").exists()
    assert no_leftovers(git_repo)


def _half_done_move(repo: Path, old: str, new: str, *, swapped: bool) -> None:
    """What a controller killed inside the move leaves: its lock, the new files, a new index
    beside the real one, and the branch moved (`swapped`) or not."""
    gitdir = repo / ".git"
    temp = gitdir / "index.orchestrator-dead0000"
    temp.write_bytes((gitdir / "index").read_bytes())
    env = {**os.environ, **GIT_ENV, "GIT_INDEX_FILE": str(temp)}
    subprocess.run(["git", "-C", str(repo), "read-tree", "-m", "-u", old, new], env=env, check=True)
    if swapped:
        git(repo, "update-ref", "refs/heads/main", new, old)
    note = {"mark": checkout.LOCK_MARK, "pid": 2**22 + 7, "create_time": 1.0}
    note |= {"old": old, "new": new, "branch": "main", "temp": temp.name}
    (gitdir / "index.lock").write_text(json.dumps(note))


@pytest.mark.parametrize("swapped", [False, True])
def test_a_move_left_half_done_is_finished_or_undone(git_repo: Path, swapped: bool) -> None:
    old, new = descendant(git_repo)
    _half_done_move(git_repo, old, new, swapped=swapped)
    done = checkout.recover_checkout(gitops.open_repo(git_repo).place)
    assert done is not None
    at = new if swapped else old
    assert git(git_repo, "rev-parse", "main") == at and clean_at(git_repo, at)
    assert (git_repo / "x.txt").exists() == swapped
    assert no_leftovers(git_repo)


def test_a_lock_that_is_not_ours_is_left_alone(git_repo: Path) -> None:
    lock = git_repo / ".git" / "index.lock"
    lock.write_bytes(b"DIRC...")  # git's own lock: some git process is at work
    assert checkout.recover_checkout(gitops.open_repo(git_repo).place) is None
    assert lock.exists()
