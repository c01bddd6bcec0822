"""Preparing a worktree before its agent starts: files copied from the main checkout.

`copy: [.env, config/local.yaml]` on an agent copies those files (git-ignored ones too) from
the main checkout into the attempt's worktree when the worktree lacks them; a file already
there is never overwritten, so a retry keeps what the agent did to it. The copy is careful
on both sides, since the main checkout is the user's and the worktree the agent's: no
symlink is followed or copied (in any part of either path), nothing is written outside the
worktree, and the file appears whole (written beside it, then renamed into place).
The `setup` command runs later, in the shim, before the agent.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

CHUNK = 1 << 20


class SetupError(Exception):
    """The worktree could not be prepared (the message says which file and why)."""


def _walk(root: Path, rel: str, *, create: bool) -> Path:
    """The parent folder of `root/rel`, checked part by part: every part must be a real
    folder (not a symlink); missing ones are made when `create`."""
    here = root
    for part in PurePosixPath(rel).parts[:-1]:
        here = here / part
        try:
            mode = os.lstat(here).st_mode
        except FileNotFoundError:
            if not create:
                raise SetupError(f"{rel}: {here} does not exist") from None
            os.mkdir(here, 0o755)
            continue
        if not stat.S_ISDIR(mode):
            kind = "a symlink" if stat.S_ISLNK(mode) else "not a folder"
            raise SetupError(f"{rel}: {here} is {kind}; refused")
    return here


def _source(repo: Path, rel: str) -> tuple[Path, int]:
    parent = _walk(repo, rel, create=False)
    path = parent / PurePosixPath(rel).name
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise SetupError(f"{rel} does not exist in the main checkout ({repo})") from None
    if stat.S_ISLNK(st.st_mode):
        raise SetupError(f"{rel} is a symlink in the main checkout; refused (copy real files)")
    if not stat.S_ISREG(st.st_mode):
        raise SetupError(f"{rel} is not a regular file in the main checkout")
    return path, stat.S_IMODE(st.st_mode)


def _copy(src: Path, dest: Path, mode: int) -> None:
    tmp = dest.with_name(f".{dest.name}.orchestrator-copy")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    fd_in = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        fd_out = os.open(tmp, flags, mode & 0o777)
        try:
            while chunk := os.read(fd_in, CHUNK):
                os.write(fd_out, chunk)
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)
    os.replace(tmp, dest)


def copy_missing(repo: Path, worktree: Path, files: list[str]) -> list[str]:
    """Copy each of `files` (relative paths) from `repo` into `worktree` where missing;
    returns those copied. Raises SetupError naming the file when one cannot be copied."""
    copied = []
    for rel in files:
        src, mode = _source(repo, rel)
        try:
            parent = _walk(worktree, rel, create=True)
            dest = parent / PurePosixPath(rel).name
            if os.path.lexists(dest):
                continue
            _copy(src, dest, mode)
        except OSError as exc:
            raise SetupError(f"{rel}: {exc.strerror or exc}") from None
        copied.append(rel)
    return copied
