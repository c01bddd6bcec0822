"""Scratch worktrees for verify runs: a detached checkout of a commit, always removed after.

They live under `state/scratch/verify-<random>`. A controller killed mid-verify leaves one
behind; `clear_scratch` removes those at the next start. It touches only `verify-*` entries
of a real scratch folder (a symlink planted in place of the folder, or of an entry, is
refused or unlinked, never followed), and removes registered worktrees only when they lie
inside that folder.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from controller.git.command import run
from controller.git.places import Repo, WorktreeError, as_repo, is_real_dir, open_repo
from controller.git.worktrees import list_worktrees, remove_tree
from controller.model import names

PREFIX = "verify-"


def _real_scratch_root(scratch_root: Path) -> Path:
    if os.path.islink(scratch_root):
        os.unlink(scratch_root)  # planted: drop the link (never what it points to)
    scratch_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not is_real_dir(scratch_root):
        raise WorktreeError(f"{scratch_root} is not a directory")
    return scratch_root.resolve()


@contextmanager
def scratch_worktree(repo_path: Path | Repo, scratch_root: Path, commit: str) -> Iterator[Path]:
    """A detached worktree at `commit` under `scratch_root`, always removed afterwards."""
    repo = as_repo(repo_path)
    root = _real_scratch_root(scratch_root)
    path = names.confined(root, root / f"{PREFIX}{uuid.uuid4().hex[:12]}")
    try:
        run(repo.place, "worktree", "add", "--detach", "--quiet", str(path), commit)
        yield path
    finally:
        run(repo.place, "worktree", "remove", "--force", "--force", str(path), check=False)
        remove_tree(root, path)
        run(repo.place, "worktree", "prune", check=False)


def clear_scratch(repo_path: Path, scratch_root: Path) -> int:
    """Remove the verify worktrees a killed controller left under `scratch_root`; how many.

    Call only with the controller lock held, before any merge starts: then every
    `verify-*` entry there is a leftover (`scratch_worktree` removes its own on the way out).
    """
    if os.path.islink(scratch_root):
        os.unlink(scratch_root)  # planted: drop the link, never follow it
        return 0
    if not is_real_dir(scratch_root):
        return 0
    repo = open_repo(repo_path)
    root = scratch_root.resolve()
    stale = [
        Path(w.path)
        for w in list_worktrees(repo)
        if Path(w.path).parent == root and Path(w.path).name.startswith(PREFIX)
    ]
    for path in stale:
        if not os.path.islink(path):
            run(repo.place, "worktree", "remove", "--force", "--force", str(path), check=False)
    # the worktrees, their verify runs' pid notes, and a note's temporary file a kill left
    # half-written (`.verify-….pid.<pid>.tmp`, `state.files.write_atomic`)
    leftovers = [p for p in root.iterdir() if p.name.startswith((PREFIX, "." + PREFIX))]
    worktrees = {p for p in leftovers if p.name.startswith(PREFIX) and not p.name.endswith(".pid")}
    for path in leftovers:
        remove_tree(root, path)
    run(repo.place, "worktree", "prune", check=False)
    return len(set(stale) | worktrees)
