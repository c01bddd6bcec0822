"""One controller per state directory, enforced by a kernel file lock (`fcntl.flock`).

The lock dies with the process (even on SIGKILL), so a crashed controller never leaves a
stale lock behind. The holder writes its PID into the lock file so that a refused second
controller, `status` and `stop` can name it. The file is opened through `state.files`, so a
symlink or pipe planted in its place is never followed or blocked on.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

from controller.state import files


class LockHeld(RuntimeError):
    def __init__(self, path: Path, pid: int | None):
        self.path, self.pid = path, pid
        who = f"PID {pid}" if pid else "another process"
        super().__init__(f"another controller ({who}) holds {path}")


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


class ControllerLock:
    """Held for the controller's lifetime: `with ControllerLock(path): ...`."""

    def __init__(self, path: Path):
        self.path = path
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
                    holder = read_holder(self.path) or {}
                    pid = holder.get("pid")
                    raise LockHeld(self.path, pid if isinstance(pid, int) else None) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "started_at": time.time()}).encode())
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
