"""The merge primitives: an in-memory merge, what it would land, and moving a checkout.

`merge_tree` merges two commits without any checkout (`git merge-tree --write-tree`).
`landed_changes` lists what the merge result changes against the old integration tip,
straight from the two trees (`git diff-tree`), so the scope check sees exactly what would
land -- not what the branch's history claims, which a second merge base or a submodule
setting can hide.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from controller.git.command import out, run
from controller.git.places import Repo, as_repo
from controller.git.runner import Place

GITLINK = "160000"
SYMLINK = "120000"


@dataclass(frozen=True)
class MergeTreeResult:
    tree: str | None  # the merged tree; None when there are conflicts
    conflicts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Change:
    """One path the merge would change: modes (octal strings, "000000" when absent)."""

    path: str
    old_mode: str
    new_mode: str
    new_sha: str
    status: str  # A, M, D, T

    @property
    def is_gitlink(self) -> bool:
        return GITLINK in (self.old_mode, self.new_mode)

    @property
    def adds_symlink(self) -> bool:
        return self.new_mode == SYMLINK


def merge_tree(repo: Path | Repo, ours: str, theirs: str) -> MergeTreeResult:
    """Merge two commits in memory (no checkout touched)."""
    repo = as_repo(repo)
    args = ["merge-tree", "--write-tree", "--name-only", "-z", "--no-messages", ours, theirs]
    proc = run(repo.place, *args, check=False)
    if proc.returncode not in (0, 1):
        proc.raise_error()
    fields = proc.stdout.split("\0")
    if proc.returncode == 0:
        return MergeTreeResult(tree=fields[0].strip())
    return MergeTreeResult(tree=None, conflicts=tuple(dict.fromkeys(f for f in fields[1:] if f)))


def parse_raw_diff(text: str) -> list[Change]:
    """`git diff-tree -r -z` raw output (without renames) to changes (pure)."""
    fields = text.split("\0")
    changes = []
    i = 0
    while i + 1 < len(fields):
        meta, path = fields[i], fields[i + 1]
        i += 2
        if not meta.startswith(":"):
            continue
        old_mode, new_mode, _old_sha, new_sha, status = meta[1:].split(" ")[:5]
        changes.append(Change(path, old_mode, new_mode, new_sha, status[:1]))
    return changes


def landed_changes(repo: Path | Repo, old: str, new_tree: str) -> list[Change]:
    """Every path whose content, mode or type differs between commit `old` and `new_tree`,
    submodule pointers included whatever `.gitmodules` or the config say."""
    repo = as_repo(repo)
    text = out(
        repo.place,
        "diff-tree",
        "-r",
        "-z",
        "--no-renames",
        "--no-ext-diff",
        "--no-textconv",
        "--ignore-submodules=none",
        f"{old}^{{tree}}",
        new_tree,
    )
    return parse_raw_diff(text)


def blob_texts(repo: Path | Repo, shas: list[str], limit: int = 4096) -> dict[str, str]:
    """The content of small blobs (symlink targets), at most `limit` bytes each."""
    repo = as_repo(repo)
    found: dict[str, str] = {}
    for sha in dict.fromkeys(shas):
        proc = run(repo.place, "cat-file", "blob", sha, check=False)
        if proc.ok:
            found[sha] = proc.stdout[:limit]
    return found


def is_dirty(place: Place) -> bool:
    """True when the checkout has staged or unstaged changes to tracked files.

    Untracked files do not count: a fast-forward of that checkout refuses by itself to
    overwrite one, and most checkouts hold some (virtualenvs, build output).
    """
    return bool(out(place, "status", "--porcelain", "-z", "--untracked-files=no"))
