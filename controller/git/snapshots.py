"""Keeping an agent's work: snapshots of uncommitted work, and committing what it left.

Both stage "everything the agent wrote": tracked changes, plus every untracked file that the
work tree's own `.gitignore` files (and the user's global excludes) do not ignore. The
shared `.git/info/exclude` is deliberately not honoured: any agent can write it, and a
pattern there must not hide another agent's files from the snapshot taken before its
worktree is removed. Paths are passed literally (`GIT_LITERAL_PATHSPECS`), so a file named
`*` is that file, not a pattern.

Refs only move by explicit name and compare-and-swap: committing leftovers creates the
commit with `commit-tree` and moves `refs/heads/orchestrator/<task>` from its old tip,
whatever the worktree's HEAD was made to point at.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

from controller.git.command import out, run
from controller.git.places import Repo, as_repo
from controller.git.refs import create_archive_ref, rev_parse
from controller.git.runner import Place, git_env, pinned, run_bounded
from controller.model.names import CONTROLLER_EMAIL

STALE_LOCK_S = 5.0
ORCHESTRATOR_IDENTITY: dict[str, str] = {
    "GIT_AUTHOR_NAME": "orchestrator",
    "GIT_AUTHOR_EMAIL": CONTROLLER_EMAIL,
    "GIT_COMMITTER_NAME": "orchestrator",
    "GIT_COMMITTER_EMAIL": CONTROLLER_EMAIL,
}


def authored_by(author: tuple[str, str] | None) -> dict[str, str]:
    """The controller's identity with `author` (name, email) as the author: the committer
    stays the controller, so its merges remain recognisable (`core.attribution`)."""
    if author is None:
        return dict(ORCHESTRATOR_IDENTITY)
    name, email = author
    return {**ORCHESTRATOR_IDENTITY, "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email}


_LITERAL = {"GIT_LITERAL_PATHSPECS": "1"}


@lru_cache(maxsize=1)
def user_excludes() -> tuple[str, ...]:
    """The user's global excludes file (`core.excludesFile`, else git's default), if any."""
    argv = [*pinned(), "config", "--global", "--path", "--get", "core.excludesFile"]
    try:
        proc = run_bounded(argv, git_env(), 30.0)
        configured = proc.stdout.decode(errors="surrogateescape").strip()
    except (OSError, subprocess.TimeoutExpired):
        configured = ""
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    path = configured or os.path.join(xdg, "git", "ignore")
    return (path,) if os.path.isfile(path) else ()


def untracked(place: Place, env: Mapping[str, str] | None = None) -> list[str]:
    """Files not in the index `env` names (default: the real one) and not ignored by the
    tree's `.gitignore` files or the user's excludes."""
    args = ["ls-files", "-z", "--others", "--exclude-per-directory=.gitignore"]
    args += [f"--exclude-from={path}" for path in user_excludes()]
    return [name for name in out(place, *args, env=env).split("\0") if name]


def ignored(place: Place) -> list[str]:
    """Untracked files a snapshot leaves out because an ignore rule (a `.gitignore`, the
    user's excludes or the shared exclude) covers them: build output, `.env` copies, ...
    They are not committed; `worktrees.remove_worktree` hands them to its caller to keep
    before it deletes the worktree."""
    everything = [n for n in out(place, "ls-files", "-z", "--others").split("\0") if n]
    if not everything:
        return []
    kept = set(untracked(place))
    return [name for name in everything if name not in kept and not name.endswith("/")]


def tracked_changes(place: Place) -> bool:
    """True when tracked files differ from HEAD (staged or not)."""
    return bool(out(place, "status", "--porcelain", "-z", "--untracked-files=no"))


def has_uncommitted(place: Place, *, untracked_too: bool = True) -> bool:
    """Tracked changes, or (if `untracked_too`) untracked files worth keeping."""
    return tracked_changes(place) or (untracked_too and bool(untracked(place)))


def stage_all(place: Place, env: Mapping[str, str] | None = None) -> None:
    """Stage everything the agent wrote into the index `env` names (default: the real one)."""
    run(place, "add", "--update", env=env)
    others = untracked(place, env)
    if others:
        run(
            place,
            "add",
            "--force",
            "--pathspec-from-file=-",
            "--pathspec-file-nul",
            env={**(env or {}), **_LITERAL},
            input="\0".join(others) + "\0",
        )


def commit_tree(
    repo: Path | Repo,
    tree: str,
    parents: Sequence[str],
    message: str,
    identity: Mapping[str, str] | None = None,
) -> str:
    """Create a commit object without touching any ref or checkout."""
    repo = as_repo(repo)
    args = ["commit-tree", "--no-gpg-sign", tree]
    for parent in parents:
        args += ["-p", parent]
    env = dict(identity or ORCHESTRATOR_IDENTITY)
    return run(repo.place, *args, "-F", "-", env=env, input=message).stdout.strip()


def _snapshot_commit(repo: Repo, place: Place, message: str) -> str:
    """A commit of the full working state, made through a throw-away index."""
    head = rev_parse_at(place, "HEAD")
    with tempfile.TemporaryDirectory(prefix="orchestrator-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if head:
            run(place, "read-tree", head, env=env)
        stage_all(place, env)
        tree = run(place, "write-tree", env=env).stdout.strip()
    return commit_tree(repo, tree, [head] if head else [], message)


def rev_parse_at(place: Place, ref: str) -> str | None:
    """The commit `ref` names as seen from `place` (e.g. a worktree's HEAD), or None."""
    args = ("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    proc = run(place, *args, check=False)
    return (proc.stdout.strip() or None) if proc.ok else None


def snapshot(repo: Path | Repo, place: Place, task: str, number: int) -> str | None:
    """Archive uncommitted work (untracked files too) without touching index, HEAD or files.

    Returns the archive ref, or None when there was nothing uncommitted.
    """
    repo = as_repo(repo)
    if not has_uncommitted(place):
        return None
    message = f"{task}: snapshot of uncommitted work (attempt {number})"
    sha = _snapshot_commit(repo, place, message)
    return create_archive_ref(repo, task, number, sha)


def _clear_stale_index_lock(lock: Path, stale_after_s: float) -> None:
    """Remove `lock` once it is older than `stale_after_s` (waiting at most that long)."""
    deadline = time.monotonic() + stale_after_s + 1.0
    while True:
        try:
            age = time.time() - os.lstat(lock).st_mtime
        except FileNotFoundError:
            return
        if age > stale_after_s or time.monotonic() > deadline:
            lock.unlink(missing_ok=True)
            return
        time.sleep(0.1)


def commit_leftovers(
    repo: Path | Repo,
    place: Place,
    branch: str,
    message: str,
    *,
    identity: Mapping[str, str] | None = None,
    stale_lock_s: float = STALE_LOCK_S,
) -> str | None:
    """Commit everything uncommitted at `place` onto `branch` (by compare-and-swap of that
    branch, never through HEAD); the new sha, or None when there was nothing to commit."""
    repo = as_repo(repo)
    _clear_stale_index_lock(place.git_dir / "index.lock", stale_lock_s)
    if not has_uncommitted(place):  # the common case: the agent committed its work
        return None
    stage_all(place)
    ref = f"refs/heads/{branch}"
    tip = rev_parse(repo, ref)
    tree = run(place, "write-tree").stdout.strip()
    if tip is not None and tree == out(repo.place, "rev-parse", f"{tip}^{{tree}}").strip():
        return None
    sha = commit_tree(repo, tree, [tip] if tip else [], message, identity)
    run(repo.place, "update-ref", "-m", "orchestrator: leftovers", ref, sha, tip or "")
    return sha
