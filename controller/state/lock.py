"""The controller's singleton locks, kernel file locks (`fcntl.flock`): one in the
repository's git folder (one controller per repository, `observe.running`) and one in the
state folder (one controller per state folder).

A lock dies with the process (even on SIGKILL), so a crashed controller never leaves a
stale lock behind. The holder writes its PID, spec file and state folder into the lock file
so that a refused second controller, `status` and `stop` can name it. The file is opened
through `state.files`, so a symlink or pipe planted in its place is never followed or
blocked on.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

from controller.state import files


class LockHeld(RuntimeError):
    def __init__(self, path: Path, pid: int | None, spec: str | None = None):
        self.path, self.pid, self.spec = path, pid, spec
        who = f"PID {pid}" if pid else "another process"
        on = f", spec {spec}" if spec else ""
        super().__init__(f"another controller ({who}{on}) holds {path}")


def read_holder(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(files.read_bytes(path.parent, path, files.RECORD_LIMIT) or b"null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_locked(path: Path) -> bool:
    """True when some process holds the controller lock at `path` (nothing is created)."""
    try:
        fd = files.open_read(path.parent, path)  # a planted pipe must not block `status`
    except (OSError, ValueError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


HOLDER_WAIT_S = 1.0  # a holder that just took the lock writes its pid right after


def holder_pid(path: Path, wait_s: float = HOLDER_WAIT_S) -> int | None:
    """The pid the lock's holder wrote. Two controllers started together: the winner takes
    the lock a moment before it writes its pid, so the loser waits that moment (it used to
    read an empty file and could not name the holder)."""
    deadline = time.monotonic() + wait_s
    while True:
        pid = (read_holder(path) or {}).get("pid")
        if isinstance(pid, int) or time.monotonic() >= deadline:
            return pid if isinstance(pid, int) else None
        time.sleep(0.02)


class ControllerLock:
    """Held for the controller's lifetime: `with ControllerLock(path): ...`."""

    def __init__(self, path: Path, info: dict[str, object] | None = None):
        self.path = path
        self.info = info or {}  # written beside the pid: the spec file, the state folder
        self.fd: int | None = None

    def acquire(self) -> None:
        # never through a planted symlink or hard link: the holder truncates the file
        fd = files.open_file(self.path.parent, self.path, os.O_RDWR)
        for attempt in range(3):  # a reader's brief shared lock (is_locked) must not refuse us
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == 2:
                    os.close(fd)
                    pid = holder_pid(self.path)
                    spec = (read_holder(self.path) or {}).get("spec")
                    raise LockHeld(
                        self.path, pid, spec if isinstance(spec, str) else None
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        holder = {"pid": os.getpid(), "started_at": time.time(), **self.info}
        os.write(fd, json.dumps(holder).encode())
        os.fsync(fd)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> ControllerLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
