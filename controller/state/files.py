"""Files in the state folder, opened so that nothing planted there leads the controller away.

Agents run as the user and learn where the state folder is (`ORCHESTRATOR_PROGRESS_FILE`),
so any entry under it may have been replaced by a symlink, a named pipe or a hard link to one
of the user's files. Every access here:

- walks from the state root one component at a time through directory descriptors opened
  with `O_NOFOLLOW | O_DIRECTORY` (`dir_fd=`), so no symlink below the root is ever
  followed; missing directories are created 0700 (a symlink planted where a directory
  belongs is dropped when writing, refused when reading);
- opens the last component with `O_NOFOLLOW | O_NONBLOCK` (a named pipe never blocks) and
  uses it only if `fstat` says it is a regular file; for writing also one with a single
  link, and never with `O_TRUNC` before that check, so a hard link to a file elsewhere is
  replaced (its name unlinked, a fresh 0600 file made) rather than written through;
- caps every read at a size the caller chooses (`RECORD_LIMIT` for records and progress).

Records are replaced atomically (a temporary file, then a rename inside the same directory
descriptor). `read_regular` is the capped read for a file outside the state folder (the
spec, a roadmap): symlinks are followed there (users link their specs), but only a regular
file is read. Standard library only: the agent shim imports this module.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

KIB = 1 << 10
MIB = 1 << 20
RECORD_LIMIT = MIB  # start/exit records, progress files, the lock holder, stop requests
DIR_MODE = 0o700
FILE_MODE = 0o600

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
# what open() says when O_NOFOLLOW meets a symlink (Linux/macOS: ELOOP, FreeBSD: EMLINK),
# or O_WRONLY | O_NONBLOCK a named pipe nobody reads (ENXIO)
_PLANTED = {errno.ELOOP, errno.EMLINK, errno.ENXIO}


class UnsafeFile(OSError):
    """An entry that is not what the controller would have made there (a symlink, a pipe,
    a device, a directory where a file belongs), or a file over the read cap. `reason`
    says what it is, without the path (e.g. "is a named pipe, not a regular file")."""

    def __init__(self, code: int, path: object, reason: str) -> None:
        super().__init__(code, f"{path} {reason}")
        self.reason = reason


class FileTooLarge(UnsafeFile):
    pass


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _parts(root: Path, path: Path | str) -> list[str]:
    """`path` (absolute under `root`, or relative to it) as its components below `root`."""
    p = Path(path)
    rel = p.relative_to(root) if p.is_absolute() else p
    parts = list(rel.parts)
    if not parts or any(part in ("", ".", "..") or "/" in part for part in parts):
        raise ValueError(f"{path} is not a path inside {root}")
    return parts


def _lstat_mode(dir_fd: int, name: str) -> int | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return None


def _open_root(root: Path, create: bool) -> int:
    if create:
        os.makedirs(root, mode=DIR_MODE, exist_ok=True)
    try:
        return os.open(root, _DIR_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            mode = os.lstat(root).st_mode
            raise UnsafeFile(exc.errno, root, f"is {_kind(mode)}, not the state folder") from None
        raise


def _child_dir(fd: int, name: str, create: bool, where: Path) -> int:
    """The directory `name` in `fd` (created 0700 when missing and `create`)."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=fd)
    except FileNotFoundError:
        if not create:
            raise
    except OSError as exc:
        mode = _lstat_mode(fd, name)
        if not create or mode is None or not stat.S_ISLNK(mode):
            kind = _kind(mode) if mode is not None else "not a directory"
            raise UnsafeFile(exc.errno, where / name, f"is {kind}; not following it") from None
        os.unlink(name, dir_fd=fd)  # a planted link: drop the link itself, never its target
    with suppress(FileExistsError):
        os.mkdir(name, DIR_MODE, dir_fd=fd)
    return os.open(name, _DIR_FLAGS, dir_fd=fd)


@contextmanager
def directory(root: Path, parts: Sequence[str] = (), *, create: bool = False) -> Iterator[int]:
    """A descriptor of `root/parts...`, walked without following any symlink below `root`."""
    fd = _open_root(root, create)
    where = root
    try:
        for name in parts:
            child = _child_dir(fd, name, create, where)
            os.close(fd)
            fd, where = child, where / name
        yield fd
    finally:
        os.close(fd)


@contextmanager
def subdirectory(dir_fd: int, name: str) -> Iterator[int]:
    """A descriptor of the real directory `name` in `dir_fd` (a symlink is refused)."""
    fd = _child_dir(dir_fd, name, False, Path(name))
    try:
        yield fd
    finally:
        os.close(fd)


def ensure_dirs(root: Path, *dirs: Path, tighten: bool = False) -> None:
    """Create `root` and `dirs` (under it) as real directories, 0700. With `tighten`, an
    existing `root` that others may read (made by an older release) is made 0700 too."""
    with directory(root, create=True) as fd:
        if tighten and os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, DIR_MODE)
    for d in dirs:
        with directory(root, _parts(root, d), create=True):
            pass


# --- reading -------------------------------------------------------------------------------


def _read_fd(fd: int, limit: int, name: str, tail: bool) -> bytes:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFile(errno.EINVAL, name, f"is {_kind(st.st_mode)}, not a regular file")
    if st.st_size > limit:
        if not tail:
            raise FileTooLarge(errno.EFBIG, name, f"is larger than {limit} bytes")
        os.lseek(fd, st.st_size - limit, os.SEEK_SET)
    chunks, left = [], limit + 1
    while left > 0:
        chunk = os.read(fd, min(left, MIB))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    data = b"".join(chunks)
    if len(data) > limit:  # it grew while we read
        if not tail:
            raise FileTooLarge(errno.EFBIG, name, f"is larger than {limit} bytes")
        data = data[-limit:]
    return data


def _open_read_at(dir_fd: int, name: str) -> int:
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno not in _PLANTED:
            raise
        raise UnsafeFile(exc.errno, name, "is a symbolic link; not following it") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UnsafeFile(errno.EINVAL, name, f"is {_kind(mode)}, not a regular file")
    return fd


def read_at(dir_fd: int, name: str, limit: int, *, tail: bool = False) -> bytes:
    """At most `limit` bytes of regular file `name` in `dir_fd` (its last `limit` with
    `tail`, else FileTooLarge); UnsafeFile for a symlink, pipe, device or directory."""
    fd = _open_read_at(dir_fd, name)
    try:
        return _read_fd(fd, limit, name, tail)
    finally:
        os.close(fd)


def open_read(root: Path, path: Path | str) -> int:
    """A read-only descriptor of the regular file `path` under `root` (else UnsafeFile)."""
    parts = _parts(root, path)
    with directory(root, parts[:-1]) as fd:
        return _open_read_at(fd, parts[-1])


def read_bytes(root: Path, path: Path | str, limit: int, *, tail: bool = False) -> bytes:
    """`read_at` for `path` under `root` (see the module docstring)."""
    parts = _parts(root, path)
    with directory(root, parts[:-1]) as fd:
        return read_at(fd, parts[-1], limit, tail=tail)


def read_regular(path: Path, limit: int) -> bytes:
    """At most `limit` bytes of the regular file at `path`, symlinks followed (the spec, a
    roadmap): a pipe or device is refused (UnsafeFile), a bigger file too (FileTooLarge)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _CLOEXEC)
    try:
        return _read_fd(fd, limit, str(path), tail=False)
    finally:
        os.close(fd)


# --- writing -------------------------------------------------------------------------------


def _set_blocking(fd: int) -> int:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
    return fd


def open_at(dir_fd: int, name: str, flags: int) -> int:
    """`name` in `dir_fd` opened for writing with `flags` (O_WRONLY or O_RDWR, O_APPEND...),
    created 0600; anything but a regular file with one link is replaced by a fresh file."""
    flags &= ~(os.O_CREAT | os.O_TRUNC | os.O_EXCL)
    base = flags | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
    try:
        fd = os.open(name, base | os.O_CREAT, FILE_MODE, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno not in _PLANTED:
            raise
    else:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
            if st.st_mode & 0o077:
                os.fchmod(fd, FILE_MODE)
            return _set_blocking(fd)
        os.close(fd)
    os.unlink(name, dir_fd=dir_fd)  # the planted name only: a link, a pipe, a hard link
    return _set_blocking(os.open(name, base | os.O_CREAT | os.O_EXCL, FILE_MODE, dir_fd=dir_fd))


def open_file(root: Path, path: Path | str, flags: int = os.O_WRONLY | os.O_APPEND) -> int:
    """A descriptor of `path` under `root` for writing (see `open_at`); missing parent
    directories are created 0700. O_TRUNC is honoured after the checks, never before."""
    parts = _parts(root, path)
    with directory(root, parts[:-1], create=True) as d:
        fd = open_at(d, parts[-1], flags)
    if flags & os.O_TRUNC:
        os.ftruncate(fd, 0)
    return fd


def opener(root: Path) -> Callable[[str, int], int]:
    """An `opener=` for `open()` (and loguru) that opens files under `root` safely."""

    def _open(path: str, flags: int) -> int:
        return open_file(root, path, flags)

    return _open


def write_atomic(root: Path, path: Path | str, data: bytes) -> None:
    """Replace `path` under `root` with `data`: a temporary file in the same directory,
    fsynced, renamed over the name (a planted symlink there is replaced, not followed)."""
    parts = _parts(root, path)
    name = parts[-1]
    with directory(root, parts[:-1], create=True) as d:
        tmp = f".{name}.{os.getpid()}.tmp"
        fd = open_at(d, tmp, os.O_WRONLY)
        try:
            os.ftruncate(fd, 0)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=d, dst_dir_fd=d)


def planted(root: Path, names: Sequence[str]) -> list[str]:
    """Which of `names` (directly in `root`) exist as something the controller never makes
    there: a symlink, a pipe, a device, or a file with more than one link."""
    found = []
    for name in names:
        try:
            st = os.lstat(root / name)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            continue  # left for the caller to fail on: never removed here
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            found.append(name)
    return found


def unlink(root: Path, path: Path | str) -> None:
    """Remove the name `path` under `root` (a link itself, never what it points to);
    nothing when it, or a real directory above it, is missing."""
    parts = _parts(root, path)
    try:
        with directory(root, parts[:-1]) as d:
            os.unlink(parts[-1], dir_fd=d)
    except FileNotFoundError:
        pass
    except UnsafeFile:
        pass  # a symlink in place of a folder above it: nothing of ours is behind it
