"""Task worktrees: listing them, creating one, starting one over, removing one.

Deterministic names (`names.worktree_path`, `names.branch_for`) make every operation
idempotent, so a controller killed half-way simply does it again. Nothing outside the
worktree root is ever removed: a path that is a symlink, or that resolves outside the root,
is refused before git is asked to remove it, and uncommitted work is snapshotted to an
archive ref first (`snapshots`).
"""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from collections.abc import Callable
from pathlib import Path

from controller.git.command import out, run
from controller.git.places import (
    Repo,
    WorktreeError,
    WorktreeRedirected,
    as_repo,
    open_repo,
    registered_admin,
    registered_place,
    worktree_place,
)
from controller.git.refs import create_archive_ref, is_ancestor, rev_parse
from controller.git.runner import Place
from controller.git.snapshots import ignored, snapshot
from controller.model import names
from controller.model.observed import WorktreeObs

KeepIgnored = Callable[[Path, list[str]], object]  # (worktree, ignored file names)
ADD_LOCK_REASON = "initializing"  # `git worktree add` locks the new worktree until it is done
REMOVING = ".removing-"  # a worktree directory renamed aside on its way out (`_discard`)


def _short(ref: str) -> str:
    return ref.removeprefix("refs/heads/")


def parse_worktrees(text: str) -> list[WorktreeObs]:
    """Parse `git worktree list --porcelain -z` output (pure)."""
    result: list[WorktreeObs] = []
    fields: dict[str, str] = {}

    def flush() -> None:
        if "worktree" in fields:
            branch = fields.get("branch")
            result.append(
                WorktreeObs(
                    path=fields["worktree"],
                    head=fields.get("HEAD") or None,
                    branch=_short(branch) if branch else None,
                    bare="bare" in fields,
                    locked="locked" in fields,
                    prunable="prunable" in fields,
                    lock_reason=fields.get("locked"),
                )
            )
        fields.clear()

    for token in text.split("\0"):
        if not token:
            flush()
            continue
        key, _, value = token.partition(" ")
        fields[key] = value
    flush()
    return result


def list_worktrees(repo: Path | Repo) -> list[WorktreeObs]:
    """All worktrees of `repo` (main one first), incl. bare, detached, locked, prunable."""
    return parse_worktrees(out(as_repo(repo).place, "worktree", "list", "--porcelain", "-z"))


def worktree_at(repo: Repo, path: Path) -> WorktreeObs | None:
    target = os.path.realpath(path)
    return next((w for w in list_worktrees(repo) if os.path.realpath(w.path) == target), None)


def worktree_for_branch(
    repo: Path | Repo, branch: str, listing: list[WorktreeObs] | None = None
) -> Path | None:
    """The worktree that has `branch` checked out, or None (from `listing`, a fresh
    `list_worktrees`, when the caller has one)."""
    short = _short(branch)
    found = list_worktrees(repo) if listing is None else listing
    entry = next(
        (w for w in found if w.branch == short and not w.prunable and not w.bare),
        None,
    )
    return Path(entry.path) if entry else None


def _clear_leftover_dir(path: Path) -> None:
    """Remove an empty leftover directory; refuse (raise) for anything else."""
    if os.path.islink(path):
        os.unlink(path)  # the link only, never what it points to
        return
    if not path.exists():
        return
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()
        return
    raise WorktreeError(f"{path} exists but is not a registered worktree; refusing to touch it")


def expect_branch(entry: WorktreeObs, branch: str) -> None:
    if entry.branch != branch:
        found = entry.branch or "a detached HEAD"
        raise WorktreeError(f"worktree {entry.path} has {found} checked out, expected {branch}")


def _discard(repo: Repo, root: Path, path: Path, entry: WorktreeObs) -> None:
    """Remove the registered worktree at `path` (a real directory under `root`), in steps
    that a kill at any moment leaves recoverable.

    `git worktree remove` deletes file by file: killed half-way, it can leave a directory
    with no `.git` file, which git no longer knows and nothing can prove was a worktree
    (so nothing would ever remove it). Instead the directory is renamed aside in one step
    (`<root>/.removing-<name>-<random>`: task ids never start with a dot), git forgets the
    registration (`worktree prune`: its directory is gone), and the renamed directory is
    deleted. Whatever a kill leaves, `clear_removed` finishes at the next start or prune.
    git's own "initializing" lock of a half-added worktree is lifted first; a lock a
    person put on (`git worktree lock`) is respected.
    """
    if entry.locked:
        if not entry.half_added:
            raise WorktreeError(
                f"{path} is locked ({entry.lock_reason or 'git worktree lock'}); "
                "unlock it (`git worktree unlock`) so it can be removed"
            )
        admin = registered_admin(repo, path)
        if admin is not None and os.path.lexists(admin / "locked"):
            os.unlink(admin / "locked")
    if not os.path.lexists(path):  # already gone: git only has to forget it
        run(repo.place, "worktree", "prune")
        return
    if os.path.islink(path):
        raise WorktreeRedirected(f"{path} was replaced by a symlink; not removing it")
    aside = names.confined(root, root / f"{REMOVING}{path.name}-{uuid.uuid4().hex[:8]}")
    os.rename(names.confined(root, path), aside)
    run(repo.place, "worktree", "prune")
    remove_tree(root, aside)


def remove_tree(root: Path, path: Path) -> None:
    """Delete `path`, a directory directly under `root`, without following any symlink."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        shutil.rmtree(names.confined(root, path), ignore_errors=True)  # rmtree skips links
    else:
        os.unlink(path)


def clear_removed(root: Path) -> int:
    """Finish removals a kill interrupted: delete `<root>/.removing-*`; how many."""
    try:
        entries = [e for e in os.scandir(root) if e.name.startswith(REMOVING)]
    except OSError:
        return 0
    for entry in entries:
        remove_tree(root, Path(entry.path))
    return len(entries)


def clear_branch_lock(repo: Repo, task: str) -> bool:
    """Remove the lock file of `orchestrator/<task>` a killed git process left behind (a
    controller killed while creating or moving the branch); whether there was one. Call only
    while no agent of the task runs: nothing else may hold that lock."""
    lock = repo.common_dir / "refs" / "heads" / f"{names.branch_for(task)}.lock"
    if os.path.islink(lock) or not lock.is_file():
        return False
    lock.unlink(missing_ok=True)
    return True


def ensure_worktree(
    repo_path: Path, root: Path, task: str, base_sha: str, *, new: bool = False
) -> Path:
    """Make sure branch `orchestrator/<task>` and its worktree exist; idempotent.

    An existing branch is never moved; a new one starts at `base_sha`. `new`: the caller saw
    neither the branch nor the worktree, so one `git worktree add -b` is tried first (it
    refuses an existing branch or path; the checks below then take over).
    """
    repo = open_repo(repo_path)
    root.mkdir(parents=True, exist_ok=True)
    path = names.worktree_path(root, task)
    branch = names.branch_for(task)
    clear_branch_lock(repo, task)  # no agent of the task runs while it is being started
    if new and not os.path.lexists(path):
        args = ("worktree", "add", "--quiet", "-b", branch, str(path), base_sha)
        if run(repo.place, *args, check=False).ok:
            return path
    run(repo.place, "worktree", "prune")
    if rev_parse(repo, f"refs/heads/{branch}") is None:
        run(repo.place, "branch", "--no-track", "--end-of-options", branch, base_sha)
    entry = worktree_at(repo, path)
    if entry is not None and entry.half_added and not os.path.islink(path):
        # its checkout may be incomplete, and no agent was ever started in it: add it again
        _discard(repo, root, path, entry)
        entry = None
    if entry is not None:
        expect_branch(entry, branch)
        worktree_place(repo, path)  # refuses a worktree whose pointers were edited
        return path
    _clear_leftover_dir(path)
    run(repo.place, "worktree", "add", "--quiet", str(path), branch)
    return path


def task_place(repo: Repo, root: Path, task: str) -> Place:
    """The pinned place of a task's worktree; WorktreeRedirected when it was tampered with."""
    return worktree_place(repo, names.worktree_path(root, task))


def reset_task_branch(repo_path: Path, root: Path, task: str, new_base: str, number: int) -> None:
    """Start a task over from `new_base`, archiving the old tip and any uncommitted work.

    The branch moves by an explicit compare-and-swap of `refs/heads/orchestrator/<task>`
    and the files follow with `read-tree`, so whatever the worktree's HEAD was made to
    point at, no other branch can move.
    """
    repo = open_repo(repo_path)
    branch = names.branch_for(task)
    path = names.worktree_path(root, task)
    clear_branch_lock(repo, task)
    run(repo.place, "worktree", "prune")
    entry = worktree_at(repo, path)
    old = rev_parse(repo, f"refs/heads/{branch}")
    if entry is None:
        if old is not None:
            create_archive_ref(repo, task, number, old)
        run(repo.place, "branch", "--force", "--no-track", "--end-of-options", branch, new_base)
        return
    expect_branch(entry, branch)
    place = registered_place(repo, path)
    snapshot(repo, place, task, number)
    if old is not None:
        create_archive_ref(repo, task, number, old)
    run(
        repo.place,
        "update-ref",
        "-m",
        "orchestrator: fresh start",
        f"refs/heads/{branch}",
        new_base,
        old or "",
    )
    run(place, "read-tree", "-u", "--reset", new_base)
    run(place, "clean", "-fd", "--quiet")  # not -x: ignored files were not snapshotted


def _archive_detached_work(repo: Repo, entry: WorktreeObs, task: str, number: int) -> str | None:
    """Commits only the worktree's HEAD holds (the agent switched branch or detached HEAD and
    committed there): archived, so that removing the worktree loses nothing."""
    head = rev_parse(repo, entry.head) if entry.head else None
    tip = rev_parse(repo, f"refs/heads/{names.branch_for(task)}")
    if head and not (tip and is_ancestor(repo, head, tip)):
        return create_archive_ref(repo, task, number, head)
    return None


def remove_worktree(
    repo_path: Path,
    root: Path,
    task: str,
    number: int,
    keep_ignored: KeepIgnored | None = None,
) -> str | None:
    """Remove the task's worktree (never its branch), snapshotting uncommitted work first.

    Returns the archive ref holding the snapshot or commits only the worktree held, or
    None when nothing needed saving. The work is read through the registration git made
    (checked by `places`), so an agent that edited its `.git` file cannot redirect it.
    Files an ignore rule keeps out of the snapshot are handed to `keep_ignored` (worktree
    path, names) first; if it raises, nothing is removed.
    """
    repo = open_repo(repo_path)
    path = names.worktree_path(root, task)
    clear_removed(root)
    run(repo.place, "worktree", "prune")
    entry = worktree_at(repo, path)
    if entry is None:
        _clear_leftover_dir(path)
        return None
    if os.path.islink(path):
        raise WorktreeRedirected(f"{path} was replaced by a symlink; not removing it")
    place = registered_place(repo, path)  # whatever the agent made of its `.git` file
    ref = snapshot(repo, place, task, number) or _archive_detached_work(repo, entry, task, number)
    if keep_ignored is not None:
        left_out = ignored(place)
        if left_out:
            keep_ignored(path, left_out)
    _discard(repo, root, path, entry)
    return ref


def repair_worktree_registrations(repo_path: Path) -> list[str]:
    """Finish registrations a kill inside `git worktree add` left half-written; their names.

    git writes `<common dir>/worktrees/<name>/commondir` early in `worktree add`; killed right
    then, the file stays empty and every later `git worktree list` dies with "failed to read
    .../commondir". Its content is always the path back to the common dir, `../..`; writing
    it lets git see the registration again, and the usual prune and re-add take over.
    """
    repo = open_repo(repo_path)
    repaired = []
    try:
        entries = list(os.scandir(repo.admin_root))
    except OSError:
        return []
    for entry in entries:
        commondir = Path(entry.path) / "commondir"
        try:
            if not entry.is_dir(follow_symlinks=False) or os.path.islink(commondir):
                continue
            if commondir.read_text().strip():
                continue
        except FileNotFoundError:
            continue
        commondir.write_text("../..\n")
        repaired.append(entry.name)
    return repaired
