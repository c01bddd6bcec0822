"""Ignored files of a worktree about to be removed: kept in a tarball, up to a cap.

A snapshot commits what an agent left uncommitted, but not files an ignore rule covers --
build output, a copied `.env`, a local database -- and removing the worktree deletes them.
Before that, `git.remove_worktree` hands them here: they are written to
`state/archive/<task>/<n>.tar.gz` (0600, written through `state.files` to a temporary file
renamed into place: never a truncated archive, and a symlink planted there is replaced,
never followed; an existing archive is never overwritten, the next one is `<n>-2.tar.gz`).
Symlinks are stored as links (their targets are never read), other special files are
skipped.

The cap: at most `LIMIT_BYTES` (50 MiB) of file content and `LIMIT_FILES` (10,000) files per
worktree, taken in path order; what does not fit is deleted with the worktree, and the
archive's `MANIFEST.orchestrator.txt` lists it (path and size), as does the prune event.
A failure to write the archive stops the removal: nothing is deleted unkept by accident.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from controller.state import files
from controller.state.paths import StatePaths

LIMIT_BYTES = 50 * 1024 * 1024
LIMIT_FILES = 10_000
MANIFEST = "MANIFEST.orchestrator.txt"


@dataclass
class IgnoredKept:
    """What `keep_ignored` did: the archive, and the files it kept or left out."""

    archive: Path | None = None
    kept: list[str] = field(default_factory=list)
    kept_bytes: int = 0
    left_out: list[tuple[str, int]] = field(default_factory=list)

    def describe(self) -> str:
        if self.archive is None:
            return ""
        text = f"{len(self.kept)} ignored file(s) ({self.kept_bytes} bytes) kept in {self.archive}"
        if self.left_out:
            size = sum(n for _, n in self.left_out)
            text += (
                f"; {len(self.left_out)} more ({size} bytes) over the cap of "
                f"{LIMIT_BYTES // (1024 * 1024)} MiB / {LIMIT_FILES} files were deleted "
                f"(listed in its {MANIFEST})"
            )
        return text


def _free_name(paths: StatePaths, task: str, number: int) -> Path:
    first = paths.ignored_archive(task, number)
    for k in range(1, 10_000):
        candidate = first if k == 1 else first.with_name(f"{number}-{k}.tar.gz")
        if not os.path.lexists(candidate):
            return candidate
    raise OSError(f"no free archive name next to {first}")


def _select(worktree: Path, names: list[str]) -> tuple[list[tuple[str, int]], IgnoredKept]:
    chosen: list[tuple[str, int]] = []
    result = IgnoredKept()
    for name in sorted(names):
        if Path(name).is_absolute() or ".." in Path(name).parts:
            continue
        try:
            st = os.lstat(worktree / name)
        except OSError:
            continue
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            continue
        size = st.st_size if stat.S_ISREG(st.st_mode) else 0
        over = result.kept_bytes + size > LIMIT_BYTES or len(chosen) >= LIMIT_FILES
        if over:
            result.left_out.append((name, size))
            continue
        chosen.append((name, size))
        result.kept_bytes += size
    return chosen, result


def _manifest(result: IgnoredKept) -> bytes:
    lines = [f"kept {name}" for name in result.kept]
    lines += [f"deleted (over the cap) {name} {size}" for name, size in result.left_out]
    return ("\n".join(lines) + "\n").encode("utf-8", errors="surrogateescape")


def keep_ignored(
    paths: StatePaths, task: str, number: int, worktree: Path, names: list[str]
) -> IgnoredKept:
    """Write the ignored files `names` of `worktree` to a new archive (see the module)."""
    chosen, result = _select(worktree, names)
    if not chosen and not result.left_out:
        return result
    buffer = io.BytesIO()  # at most LIMIT_BYTES, compressed
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, _ in chosen:
            tar.add(str(worktree / name), arcname=name, recursive=False)
            result.kept.append(name)
        data = _manifest(result)
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
        tar.addfile(info, io.BytesIO(data))
    target = _free_name(paths, task, number)
    # whole or not at all: written beside it and renamed (a kill mid-write leaves no
    # truncated archive, only a hidden temporary file, removed by the next archive here)
    _clear_temporaries(target.parent)
    files.write_atomic(paths.root, target, buffer.getvalue())
    result.archive = target
    return result


def _clear_temporaries(folder: Path) -> None:
    """Temporary files (`.<name>.<pid>.tmp`, `state.files.write_atomic`) a kill left."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(".") and entry.name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)  # a link itself, never its target
