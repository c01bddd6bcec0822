"""Thin git layer: every git mutation the controller makes goes through this module.

Why one module: the controller's promises about git -- nothing is ever lost (uncommitted work
is snapshotted to an archive ref before anything destructive), the integration branch only
moves by compare-and-swap, nothing outside the worktree root is ever touched -- can only be
checked if exactly one place runs git. Everything here calls the git CLI with argv lists
(never a shell), with terminal prompts disabled; commits the controller itself creates carry
the identity `orchestrator <orchestrator@localhost>`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from controller.model import names

ORCHESTRATOR_IDENTITY: dict[str, str] = {
    "GIT_AUTHOR_NAME": "orchestrator",
    "GIT_AUTHOR_EMAIL": "orchestrator@localhost",
    "GIT_COMMITTER_NAME": "orchestrator",
    "GIT_COMMITTER_EMAIL": "orchestrator@localhost",
}
# Inherited variables that would redirect git away from the `-C` directory we name.
_REPO_ENV_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
    "GIT_NAMESPACE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
)
STALE_LOCK_S = 5.0
ADD_LOCK_REASON = "initializing"  # `git worktree add` locks the new worktree until it is done


class GitError(RuntimeError):
    """A git command failed."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"{' '.join(self.argv)} exited {returncode}: {stderr.strip()}")


class WorktreeError(RuntimeError):
    """A worktree (or its directory) is in a state the controller refuses to touch."""


def _git_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV_VARS}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.update(extra or {})
    return env


def _run(
    repo: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        encoding="utf-8",
        errors="surrogateescape",
        env=_git_env(env),
        input=input,
        check=False,
    )


def _raise(proc: subprocess.CompletedProcess[str]) -> NoReturn:
    raise GitError(proc.args, proc.returncode, proc.stderr)


def git(
    repo: Path,
    *args: str,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
) -> str:
    """Run `git -C repo args...` and return its stdout; raise GitError on failure if `check`."""
    proc = _run(repo, *args, env=env, input=input)
    if check and proc.returncode != 0:
        _raise(proc)
    return proc.stdout


def rev_parse(repo: Path, ref: str) -> str | None:
    """The commit `ref` names, or None when it names no commit."""
    proc = _run(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def is_ancestor(repo: Path, ancestor: str, descendant: str) -> bool:
    return _run(repo, "merge-base", "--is-ancestor", ancestor, descendant).returncode == 0


def merge_base(repo: Path, a: str, b: str) -> str | None:
    """The best common ancestor of two commits, or None when they share no history."""
    proc = _run(repo, "merge-base", a, b)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


# --- worktrees -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorktreeEntry:
    """One record of `git worktree list --porcelain`."""

    path: Path
    head: str | None
    branch: str | None  # full ref name, e.g. "refs/heads/main"; None when detached or bare
    prunable: bool = False
    locked: str | None = None  # the lock reason ("" without one); None when not locked

    @property
    def half_added(self) -> bool:
        """`git worktree add` was killed before it finished: git's own lock is still on."""
        return self.locked == ADD_LOCK_REASON


def _entry(fields: dict[str, str]) -> WorktreeEntry:
    return WorktreeEntry(
        path=Path(fields["worktree"]),
        head=fields.get("HEAD"),
        branch=fields.get("branch"),
        prunable="prunable" in fields,
        locked=fields.get("locked"),
    )


def list_worktrees(repo: Path) -> list[WorktreeEntry]:
    out = git(repo, "worktree", "list", "--porcelain", "-z")
    entries: list[WorktreeEntry] = []
    current: dict[str, str] = {}
    for field in out.split("\0"):
        if not field:
            if current:
                entries.append(_entry(current))
            current = {}
            continue
        key, _, value = field.partition(" ")
        current[key] = value
    return entries


def _worktree_at(repo: Path, path: Path) -> WorktreeEntry | None:
    target = path.resolve()
    return next((e for e in list_worktrees(repo) if e.path.resolve() == target), None)


def worktree_for_branch(repo: Path, branch: str) -> Path | None:
    """The worktree that has `branch` checked out, or None."""
    full = branch if branch.startswith("refs/") else f"refs/heads/{branch}"
    entry = next(
        (e for e in list_worktrees(repo) if e.branch == full and not e.prunable),
        None,
    )
    return entry.path if entry else None


def _clear_leftover_dir(path: Path) -> None:
    """Remove an empty leftover directory; refuse (raise) for anything else."""
    if not path.exists():
        return
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()
        return
    raise WorktreeError(f"{path} exists but is not a registered worktree; refusing to touch it")


def _expect_branch(entry: WorktreeEntry, branch: str) -> None:
    if entry.branch != f"refs/heads/{branch}":
        found = entry.branch or "a detached HEAD"
        raise WorktreeError(f"worktree {entry.path} has {found} checked out, expected {branch}")


def ensure_worktree(repo: Path, root: Path, task: str, base_sha: str) -> Path:
    """Make sure branch `orchestrator/<task>` and its worktree exist; idempotent.

    An existing branch is never moved; a new one starts at `base_sha`.
    """
    root.mkdir(parents=True, exist_ok=True)
    path = names.worktree_path(root, task)
    branch = names.branch_for(task)
    git(repo, "worktree", "prune")
    if rev_parse(repo, f"refs/heads/{branch}") is None:
        git(repo, "branch", "--no-track", branch, base_sha)
    entry = _worktree_at(repo, path)
    if entry is not None and entry.half_added:
        # its checkout may be incomplete, and no agent was ever started in it: add it again
        git(repo, "worktree", "remove", "--force", "--force", str(path))
        git(repo, "worktree", "prune")
        entry = None
    if entry is not None:
        _expect_branch(entry, branch)
        return path
    _clear_leftover_dir(path)
    git(repo, "worktree", "add", "--quiet", str(path), branch)
    return path


def has_uncommitted(worktree: Path, *, untracked: bool = True) -> bool:
    """Tracked changes (staged or not) or, if `untracked`, untracked non-ignored files."""
    mode = "--untracked-files=all" if untracked else "--untracked-files=no"
    return bool(git(worktree, "status", "--porcelain", "-z", mode))


# --- snapshots and archive refs --------------------------------------------------------------


def _create_archive_ref(repo: Path, task: str, number: int, sha: str) -> str:
    """Point a fresh archive ref at `sha`: `<archive>/<n>`, else `<n>-2`, `<n>-3`, ...

    Existing refs are never overwritten; one already pointing at `sha` is reused.
    """
    base = names.archive_ref(task, number)
    for k in range(1, 10_000):
        ref = base if k == 1 else f"{base}-{k}"
        current = rev_parse(repo, ref)
        if current == sha:
            return ref
        if current is not None:
            continue
        proc = _run(repo, "update-ref", "-m", "orchestrator: archive", ref, sha, "")
        if proc.returncode == 0:
            return ref
        if rev_parse(repo, ref) is None:
            _raise(proc)
    raise GitError(["update-ref", base], 1, "no free archive ref number")


def _snapshot_commit(worktree: Path, message: str) -> str:
    """A commit of the full working state, made through a throw-away index."""
    head = rev_parse(worktree, "HEAD")
    with tempfile.TemporaryDirectory(prefix="orchestrator-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if head:
            git(worktree, "read-tree", head, env=env)
        git(worktree, "add", "-A", env=env)
        tree = git(worktree, "write-tree", env=env).strip()
    return commit_tree(worktree, tree, [head] if head else [], message)


def snapshot(repo: Path, worktree: Path, task: str, number: int) -> str | None:
    """Archive uncommitted work (untracked files too) without touching index, HEAD or files.

    Returns the archive ref, or None when there was nothing uncommitted.
    """
    if not has_uncommitted(worktree):
        return None
    sha = _snapshot_commit(worktree, f"{task}: snapshot of uncommitted work (attempt {number})")
    return _create_archive_ref(repo, task, number, sha)


def archive_branch_tip(repo: Path, task: str, number: int) -> str | None:
    """Point an archive ref at the tip of `orchestrator/<task>` (None if no such branch)."""
    sha = rev_parse(repo, f"refs/heads/{names.branch_for(task)}")
    return _create_archive_ref(repo, task, number, sha) if sha else None


# --- committing what an agent left behind ----------------------------------------------------


def _clear_stale_index_lock(lock: Path, stale_after_s: float) -> None:
    """Remove `lock` once it is older than `stale_after_s` (waiting at most that long)."""
    deadline = time.monotonic() + stale_after_s + 1.0
    while True:
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return
        if age > stale_after_s or time.monotonic() > deadline:
            lock.unlink(missing_ok=True)
            return
        time.sleep(0.1)


def commit_leftovers(
    worktree: Path, message: str, *, stale_lock_s: float = STALE_LOCK_S
) -> str | None:
    """Commit everything uncommitted in `worktree` (as orchestrator); new sha or None."""
    git_dir = Path(git(worktree, "rev-parse", "--absolute-git-dir").strip())
    _clear_stale_index_lock(git_dir / "index.lock", stale_lock_s)
    git(worktree, "add", "-A")
    staged = _run(worktree, "diff", "--cached", "--quiet")
    if staged.returncode == 0:
        return None
    if staged.returncode != 1:
        _raise(staged)
    git(
        worktree,
        "commit",
        "--no-verify",
        "--no-gpg-sign",
        "--quiet",
        "-m",
        message,
        env=ORCHESTRATOR_IDENTITY,
    )
    return rev_parse(worktree, "HEAD")


def reset_task_branch(repo: Path, root: Path, task: str, new_base: str, number: int) -> None:
    """Start a task over from `new_base`, archiving the old tip and any uncommitted work."""
    branch = names.branch_for(task)
    path = names.worktree_path(root, task)
    git(repo, "worktree", "prune")
    entry = _worktree_at(repo, path)
    if entry is None:
        archive_branch_tip(repo, task, number)
        git(repo, "branch", "--force", "--no-track", branch, new_base)
        return
    _expect_branch(entry, branch)
    snapshot(repo, path, task, number)
    archive_branch_tip(repo, task, number)
    git(path, "reset", "--hard", "--quiet", new_base)
    git(path, "clean", "-fd", "--quiet")  # not -x: ignored files were not snapshotted


def remove_worktree(repo: Path, root: Path, task: str, number: int) -> str | None:
    """Remove the task's worktree (never its branch), snapshotting uncommitted work first.

    Commits only the worktree's HEAD holds (its agent switched branch or detached HEAD and
    committed there) are archived too. Returns the archive ref holding the snapshot or
    those commits, or None when nothing needed saving.
    """
    path = names.worktree_path(root, task)
    git(repo, "worktree", "prune")
    entry = _worktree_at(repo, path)
    if entry is None:
        _clear_leftover_dir(path)
        return None
    ref = snapshot(repo, path, task, number)
    head = rev_parse(repo, entry.head) if entry.head else None
    tip = rev_parse(repo, f"refs/heads/{names.branch_for(task)}")
    if ref is None and head and not (tip and is_ancestor(repo, head, tip)):
        ref = _create_archive_ref(repo, task, number, head)
    force = ["--force", "--force"] if entry.half_added else ["--force"]
    git(repo, "worktree", "remove", *force, str(path))
    git(repo, "worktree", "prune")
    return ref


@contextmanager
def scratch_worktree(repo: Path, scratch_root: Path, commit: str) -> Iterator[Path]:
    """A detached worktree at `commit` under `scratch_root`, always removed afterwards."""
    scratch_root.mkdir(parents=True, exist_ok=True)
    path = names.confined(scratch_root, scratch_root / f"verify-{uuid.uuid4().hex[:12]}")
    try:
        git(repo, "worktree", "add", "--detach", "--quiet", str(path), commit)
        yield path
    finally:
        _run(repo, "worktree", "remove", "--force", "--force", str(path))
        if path.exists():
            shutil.rmtree(names.confined(scratch_root, path), ignore_errors=True)
        _run(repo, "worktree", "prune")


def repair_worktree_registrations(repo: Path) -> list[str]:
    """Finish registrations a kill inside `git worktree add` left half-written; their names.

    git writes `<common dir>/worktrees/<name>/commondir` early in `worktree add`; killed right
    then, the file stays empty and every later `git worktree list` dies with "failed to read
    .../commondir". Its content is always the path back to the common dir, `../..`; writing
    it lets git see the registration again, and the usual prune and re-add take over.
    """
    common = Path(git(repo, "rev-parse", "--path-format=absolute", "--git-common-dir").strip())
    repaired = []
    try:
        entries = list(os.scandir(common / "worktrees"))
    except OSError:
        return []
    for entry in entries:
        commondir = Path(entry.path) / "commondir"
        try:
            if not entry.is_dir(follow_symlinks=False) or commondir.read_text().strip():
                continue
        except FileNotFoundError:
            continue
        commondir.write_text("../..\n")
        repaired.append(entry.name)
    return repaired


def clear_scratch(repo: Path, scratch_root: Path) -> int:
    """Remove the verify worktrees a killed controller left under `scratch_root`; how many.

    Call only with the controller lock held, before any merge starts: then every
    `verify-*` entry there is a leftover (`scratch_worktree` removes its own on the way out).
    """
    if not scratch_root.is_dir():
        return 0
    root = scratch_root.resolve()
    stale = [e.path for e in list_worktrees(repo) if e.path.resolve().parent == root]
    for path in stale:
        _run(repo, "worktree", "remove", "--force", "--force", str(path))
    leftovers = [p for p in root.iterdir() if p.name.startswith("verify-")]
    for path in leftovers:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(names.confined(root, path), ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    _run(repo, "worktree", "prune")
    return len(set(stale) | {p.resolve() for p in leftovers})


# --- history queries and the merge primitives ------------------------------------------------


def changed_files(repo: Path, integration: str, branch: str) -> list[str]:
    """Files `branch` changed since its merge-base with `integration` (renames as two paths)."""
    out = git(repo, "diff", "--name-only", "-z", "--no-renames", f"{integration}...{branch}", "--")
    return [name for name in out.split("\0") if name]


@dataclass(frozen=True)
class MergeTreeResult:
    tree: str | None  # the merged tree; None when there are conflicts
    conflicts: tuple[str, ...] = ()


def merge_tree(repo: Path, ours: str, theirs: str) -> MergeTreeResult:
    """Merge two commits in memory (no checkout touched)."""
    proc = _run(
        repo, "merge-tree", "--write-tree", "--name-only", "-z", "--no-messages", ours, theirs
    )
    if proc.returncode not in (0, 1):
        _raise(proc)
    fields = proc.stdout.split("\0")
    if proc.returncode == 0:
        return MergeTreeResult(tree=fields[0].strip())
    return MergeTreeResult(tree=None, conflicts=tuple(dict.fromkeys(f for f in fields[1:] if f)))


def commit_tree(repo: Path, tree: str, parents: Sequence[str], message: str) -> str:
    """Create a commit object (as orchestrator) without touching any ref or checkout."""
    args = ["commit-tree", "--no-gpg-sign", tree]
    for parent in parents:
        args += ["-p", parent]
    out = git(repo, *args, "-F", "-", env=ORCHESTRATOR_IDENTITY, input=message)
    return out.strip()


def cas_update_ref(repo: Path, ref: str, new: str, old: str, *, reason: str = "land") -> bool:
    """Move `ref` from `old` to `new` atomically; False (no raise) when it no longer is `old`."""
    proc = _run(repo, "update-ref", "-m", f"orchestrator: {reason}", ref, new, old)
    if proc.returncode == 0:
        return True
    if rev_parse(repo, ref) != (old or None):
        return False
    _raise(proc)


def fast_forward_checkout(worktree: Path, new_sha: str) -> None:
    """Fast-forward the branch checked out in `worktree` (and its files) to `new_sha`."""
    git(
        worktree,
        "merge",
        "--ff-only",
        "--no-edit",
        "--no-autostash",
        "--quiet",
        new_sha,
        env=ORCHESTRATOR_IDENTITY,
    )
