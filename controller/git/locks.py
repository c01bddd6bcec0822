"""Lock files a killed git process left behind: found, proven stale, removed.

git takes a lock on a file by creating `<file>.lock` exclusively and renames it over the
file when done. A git process killed in between -- with its controller, by SIGKILL to the
process group -- leaves the `.lock` behind, and every later git call on that file fails
with "Another git process seems to be running in this repository". Nothing clears it by
itself: a controller that only retried would fail on every pass, forever.

Which locks are looked at (`candidates`): those the controller's own git calls take --
refs under `refs/orchestrator/` (archive refs and the like: only the controller writes
them, and it holds the singleton lock), the task branches, the integration branch,
`packed-refs`, the index and HEAD of task worktrees and verify scratch worktrees, and the
index, HEAD and ORIG_HEAD of the checkout the integration branch is fast-forwarded in.

When one is stale (`holders` finds none): no live process has the lock file open, and no
live git process works in this repository (its working directory, or an argument, names
the repository, its git directory, the worktree root or the scratch folder). Only then is
the file removed -- after checking that it is still the very file that was judged (same
inode and modification time), so a lock a new git process just took is never touched.
Otherwise the lock is reported with the pids that may hold it, and the caller waits.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from controller.git.places import Repo, read_pointer

LOCK_SUFFIX = ".lock"


@dataclass
class LockReport:
    """What `clear_stale_locks` did: the locks it removed, and those still held (with the
    pids of the processes that may hold them)."""

    removed: list[Path] = field(default_factory=list)
    held: dict[Path, list[int]] = field(default_factory=dict)

    def describe_held(self) -> str:
        return "; ".join(
            f"{path} may be held by pid {', '.join(map(str, pids))}"
            for path, pids in sorted(self.held.items())
        )


def _lock_files_under(folder: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        found += [Path(dirpath, f) for f in filenames if f.endswith(LOCK_SUFFIX)]
    return found


def _admin_dirs_under(repo: Repo, roots: Sequence[Path]) -> list[Path]:
    """Worktree admin directories whose worktree lies under one of `roots`."""
    found = []
    try:
        entries = list(os.scandir(repo.admin_root))
    except OSError:
        return []
    real_roots = [Path(os.path.realpath(r)) for r in roots]
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            continue
        pointed = read_pointer(Path(entry.path) / "gitdir")
        if not pointed:
            continue
        where = Path(os.path.realpath(Path(pointed).parent))
        if any(where.is_relative_to(root) for root in real_roots):
            found.append(Path(entry.path))
    return found


def candidates(
    repo: Repo, integration: str, roots: Sequence[Path], checkout_git_dir: Path | None
) -> list[Path]:
    """Lock files (that exist now) of the files the controller's git calls write."""
    common = repo.common_dir
    branch = integration.removeprefix("refs/heads/")
    paths = _lock_files_under(common / "refs" / "orchestrator")
    paths += _lock_files_under(common / "refs" / "heads" / "orchestrator")
    paths += [common / "refs" / "heads" / f"{branch}{LOCK_SUFFIX}", common / "packed-refs.lock"]
    admins = _admin_dirs_under(repo, roots)
    if checkout_git_dir is not None:
        admins.append(checkout_git_dir)
    for admin in admins:
        paths += [admin / "index.lock", admin / "HEAD.lock", admin / "ORIG_HEAD.lock"]
    return [p for p in dict.fromkeys(paths) if os.path.lexists(p)]


def _is_git(argv: Sequence[str], name: str) -> bool:
    base = os.path.basename(argv[0]) if argv else name
    return base == "git" or base.startswith("git-") or name == "git"


def _names_any(text: str, needles: Iterable[str]) -> bool:
    return any(needle in text for needle in needles)


def holders(locks: Sequence[Path], related: Sequence[Path]) -> dict[Path, list[int]]:
    """For each lock, the pids of live processes that may hold it: any process with it
    open, and every live git process working in the repository (see the module docstring).
    Processes that cannot be inspected (another user's) are skipped: they cannot write
    this repository's locks either, unless it is shared, which the controller does not
    support."""
    wanted = {os.path.realpath(p): p for p in locks}
    needles = [os.path.realpath(p) for p in related] + [str(p) for p in related]
    me = os.getpid()
    git_pids: list[int] = []
    opened: dict[Path, list[int]] = {p: [] for p in locks}
    for proc in psutil.process_iter(["pid", "name", "cmdline", "cwd", "status"]):
        info = proc.info
        pid = info["pid"]
        if pid == me or info["status"] == psutil.STATUS_ZOMBIE:
            continue
        argv = info["cmdline"] or []
        if _is_git(argv, info["name"] or ""):
            cwd = info["cwd"] or ""
            if _names_any(cwd, needles) or any(_names_any(arg, needles) for arg in argv):
                git_pids.append(pid)
        for path in _open_paths(pid):
            if path in wanted:
                opened[wanted[path]].append(pid)
    return {lock: sorted(set(opened[lock]) | set(git_pids)) for lock in locks}


def _open_paths(pid: int) -> list[str]:
    """Paths `pid` has open (its /proc fd links on Linux; psutil elsewhere)."""
    folder = f"/proc/{pid}/fd"
    try:
        names = os.listdir(folder)
    except OSError:
        if os.path.isdir("/proc/self/fd"):
            return []
        try:
            return [f.path for f in psutil.Process(pid).open_files()]
        except psutil.Error:
            return []
    out = []
    for name in names:
        try:
            out.append(os.readlink(f"{folder}/{name}"))
        except OSError:
            continue
    return out


def _remove_if_unchanged(path: Path, seen: os.stat_result) -> bool:
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        return False
    same = (now.st_ino, now.st_mtime_ns, now.st_dev) == (seen.st_ino, seen.st_mtime_ns, seen.st_dev)
    if not same or stat.S_ISDIR(now.st_mode):
        return False
    os.unlink(path)  # the lock file itself (a symlink is unlinked, never followed)
    return True


def clear_stale_locks(
    repo: Repo,
    integration: str,
    roots: Sequence[Path],
    *,
    checkout_git_dir: Path | None = None,
) -> LockReport:
    """Remove the stale lock files among `candidates`; report the held ones (see the module
    docstring). `roots` are the worktree root and the scratch folder."""
    report = LockReport()
    found = candidates(repo, integration, roots, checkout_git_dir)
    if not found:
        return report
    seen: dict[Path, os.stat_result] = {}
    for path in found:
        try:
            seen[path] = os.lstat(path)
        except FileNotFoundError:
            continue
    related = [repo.common_dir, repo.git_dir, *roots] + ([repo.top] if repo.top else [])
    for path, pids in holders(list(seen), related).items():
        if pids:
            report.held[path] = pids
        elif _remove_if_unchanged(path, seen[path]):
            report.removed.append(path)
    return report
