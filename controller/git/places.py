"""Where the controller's git calls run, checked before they are trusted.

The user's repository is resolved once from the path the user gave (`Repo`): its work tree,
its git directory and the common directory every worktree shares. A task worktree is
trusted only through its registration: its `.git` file must be a small regular file that
points at `<common>/worktrees/<id>`, whose `gitdir` points back at it and whose `commondir`
leads to the same common directory. An agent can rewrite its `.git` file to point at the
user's repository (`gitdir: /home/me/project/.git`); without this check the controller's
`add -A`, `commit` and `reset --hard` "in the worktree" would act on the user's checkout.
"""

from __future__ import annotations

import os
import stat
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from controller.git.runner import GitError, Place, git_env, pinned, run_bounded

MAX_POINTER_BYTES = 4096  # a `.git` file or registration file is one short line


class WorktreeError(RuntimeError):
    """A worktree (or its directory) is in a state the controller refuses to touch."""


class WorktreeRedirected(WorktreeError):
    """A worktree's `.git` file or registration no longer points where git registered it."""


@dataclass(frozen=True)
class Repo:
    """The user's repository, resolved once from the path the user gave."""

    top: Path | None  # the work tree of the user's checkout (None: a bare repository)
    git_dir: Path  # that checkout's git directory
    common_dir: Path  # shared by every worktree (`.git` of the main checkout)

    @property
    def place(self) -> Place:
        """Repository-level commands: the user's own checkout, named explicitly."""
        return Place(self.git_dir, self.top)

    @property
    def admin_root(self) -> Path:
        return self.common_dir / "worktrees"


def open_repo(path: Path) -> Repo:
    """Resolve the repository at `path` (raises GitError when it is none)."""
    return _open_repo(Path(os.path.realpath(path)))


def _rev_parse_paths(path: Path, *queries: str) -> list[Path] | None:
    argv = [*pinned(), "-C", str(path), "rev-parse", "--path-format=absolute", *queries]
    try:
        proc = run_bounded(argv, git_env(), 30.0)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(argv, -1, str(exc)) from None
    lines = proc.stdout.decode("utf-8", errors="surrogateescape").splitlines()
    if proc.returncode != 0 or len(lines) != len(queries):
        return None
    return [Path(os.path.realpath(line)) for line in lines]


@lru_cache(maxsize=64)
def _open_repo(path: Path) -> Repo:
    found = _rev_parse_paths(path, "--show-toplevel", "--absolute-git-dir", "--git-common-dir")
    if found is not None:
        top, git_dir, common = found
        return Repo(top=top, git_dir=git_dir, common_dir=common)
    bare = _rev_parse_paths(path, "--absolute-git-dir", "--git-common-dir")
    if bare is None:
        raise GitError(["git", "-C", str(path), "rev-parse"], 128, f"{path}: not a git repository")
    git_dir, common = bare
    return Repo(top=None, git_dir=git_dir, common_dir=common)


def as_repo(repo: Path | Repo) -> Repo:
    """`repo` itself, or the repository at that path (resolved once, then cached)."""
    return repo if isinstance(repo, Repo) else open_repo(repo)


def read_pointer(path: Path) -> str | None:
    """The one-line content of a small regular file (no symlink, FIFO or device), or None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_POINTER_BYTES:
            return None
        data = os.read(fd, MAX_POINTER_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data.decode("utf-8", errors="surrogateescape").strip()


def _resolve(base: Path, text: str) -> Path:
    return Path(os.path.realpath(base / text))


def is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def registered_admin(repo: Repo, worktree: Path) -> Path | None:
    """The admin directory git registered for `worktree`, found from the registrations
    (never from the worktree's own `.git` file)."""
    target = Path(os.path.realpath(worktree)) / ".git"
    try:
        entries = list(os.scandir(repo.admin_root))
    except OSError:
        return None
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            continue
        pointed = read_pointer(Path(entry.path) / "gitdir")
        if pointed and Path(os.path.realpath(pointed)) == target:
            return Path(entry.path)
    return None


def _registration(repo: Repo, worktree: Path) -> Path:
    """The admin directory git registered for `worktree`, checked to lead back to this
    repository's common directory; raises WorktreeRedirected when it does not."""
    if not is_real_dir(worktree):
        raise WorktreeRedirected(f"{worktree} is not a directory (or is a symlink)")
    admin = registered_admin(repo, worktree)
    if admin is None:
        raise WorktreeRedirected(f"{worktree} is not a registered worktree of {repo.top}")
    commondir = read_pointer(admin / "commondir")
    if commondir is None or _resolve(admin, commondir) != repo.common_dir:
        raise WorktreeRedirected(f"{admin}/commondir no longer leads to {repo.common_dir}")
    return admin


def _checked_admin(repo: Repo, worktree: Path) -> Path:
    """The registered admin directory of `worktree`, after checking every pointer between
    the two (the worktree's own `.git` file too); raises WorktreeRedirected with the
    reason when one was tampered with."""
    admin = _registration(repo, worktree)
    pointer = read_pointer(worktree / ".git")
    if pointer is None or not pointer.startswith("gitdir:"):
        raise WorktreeRedirected(f"{worktree}/.git is no longer git's pointer file")
    if _resolve(worktree, pointer.removeprefix("gitdir:").strip()) != admin:
        raise WorktreeRedirected(f"{worktree}/.git was edited to point away from {admin}")
    return admin


def registered_place(repo: Repo, worktree: Path) -> Place:
    """The place git registered for a linked worktree, whatever its own `.git` file now
    says: for saving an agent's work even when the agent redirected that file. Raises
    WorktreeRedirected when the path is a symlink or the registration leads elsewhere."""
    if os.path.islink(worktree):
        raise WorktreeRedirected(f"{worktree} was replaced by a symlink")
    path = Path(os.path.realpath(worktree))
    return Place(_registration(repo, path), path)


def redirection(repo: Repo, worktree: Path) -> str | None:
    """Why `worktree` cannot be trusted as the registered worktree, or None when it can."""
    try:
        _checked_admin(repo, Path(os.path.realpath(worktree)))
    except WorktreeRedirected as exc:
        return str(exc)
    return None


def worktree_place(repo: Repo, worktree: Path, *, allow_main: bool = False) -> Place:
    """The pinned place of the linked worktree at `worktree`, through its registered admin
    directory (or, with `allow_main`, the user's own checkout); raises WorktreeRedirected
    when the path is a symlink or a pointer between it and its registration was edited."""
    if os.path.islink(worktree):
        raise WorktreeRedirected(f"{worktree} was replaced by a symlink")
    path = Path(os.path.realpath(worktree))
    if path == repo.top:
        if not allow_main:
            raise WorktreeRedirected(f"{worktree} is the repository's own checkout")
        return repo.place
    return Place(_checked_admin(repo, path), path)
