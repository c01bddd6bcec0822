"""An attempt's output into a log file of bounded size, keeping the end.

The end of a log is what a user needs (the last error, the summary), so when a write takes
the file over its limit the oldest output is dropped in place: the newest half of the limit
is moved to the start of the file, behind one line saying how much was dropped. Each byte is
thus copied at most once more (amortised), and the file never holds more than the limit
(plus one write). `pump` moves a child's output from a pipe into such a log until the child
exits; the shim and the verify gate both use it.

Standard library only (the agent shim imports it).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import selectors
import time
from collections.abc import Callable

CHUNK = 1 << 16
COPY_CHUNK = 1 << 20
LINE_SEARCH = 4096  # after a trim the kept tail starts at a line if one starts this soon


def _size_text(n: int) -> str:
    for suffix, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{suffix}"
    return f"{n} bytes"


class CappedLog:
    """A log file (a descriptor opened O_RDWR | O_APPEND) kept under `limit` bytes."""

    def __init__(self, fd: int, limit: int | None) -> None:
        self.fd = fd
        self.limit = limit
        self.size = os.fstat(fd).st_size
        self.dropped = 0  # bytes of output dropped so far
        self.note_len = 0  # length of the trim note at the start of the file
        self.lost = 0  # bytes that could not be written (since the last write that worked)
        self.why = ""

    def write(self, data: bytes) -> None:
        """Append `data`. A write that fails (a full disk) loses that output, never the
        pump: the agent keeps running, and the next write that works says what was lost."""
        if self.lost:
            note = f"[orchestrator: {self.lost} bytes of output lost: {self.why}]\n".encode()
            if not self._append(note):
                self.lost += len(data)
                return
            self.lost = 0
        if not self._append(data):
            self.lost += len(data)
            return
        if self.limit is not None and self.size > self.limit:
            with contextlib.suppress(OSError):  # kept as it is; the next write tries again
                self.trim()

    def _append(self, data: bytes) -> bool:
        view = memoryview(data)
        try:
            while view:
                written = os.write(self.fd, view)
                self.size += written
                view = view[written:]
        except OSError as exc:
            self.why = exc.strerror or str(exc)
            return False
        return True

    def _note(self) -> bytes:
        shown = _size_text(self.limit or 0)
        return (
            f"[orchestrator: {self.dropped} earlier bytes of output dropped; "
            f"this log keeps about the last {shown} (logLimit)]\n"
        ).encode()

    def trim(self) -> None:
        """Drop the oldest output: keep the newest half of the limit behind a note."""
        size = os.fstat(self.fd).st_size  # others (the agent itself) may have appended too
        if self.limit is None or size <= self.limit:
            self.size = size
            return
        start = size - self.limit // 2
        head = os.pread(self.fd, LINE_SEARCH, start)
        newline = head.find(b"\n")
        if 0 <= newline < len(head) - 1:
            start += newline + 1
        self.dropped += start - self.note_len
        note = self._note()
        flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
        fcntl.fcntl(self.fd, fcntl.F_SETFL, flags & ~os.O_APPEND)  # pwrite appends otherwise
        try:
            kept = _move(self.fd, start, size, len(note))
            os.pwrite(self.fd, note, 0)
            os.ftruncate(self.fd, len(note) + kept)
        finally:
            fcntl.fcntl(self.fd, fcntl.F_SETFL, flags)
        self.note_len = len(note)
        self.size = len(note) + kept


def _move(fd: int, start: int, end: int, dest: int) -> int:
    """Copy bytes [start, end) of the file to offset `dest` (< start); how many."""
    done = 0
    while start + done < end:
        chunk = os.pread(fd, min(COPY_CHUNK, end - start - done), start + done)
        if not chunk:
            break
        os.pwrite(fd, chunk, dest + done)
        done += len(chunk)
    return done


def drain(out_fd: int, log: CappedLog) -> bool:
    """Move what the pipe holds now into `log` without blocking; False at end of file."""
    os.set_blocking(out_fd, False)
    try:
        while True:
            try:
                data = os.read(out_fd, CHUNK)
            except BlockingIOError:
                return True
            if not data:
                return False
            log.write(data)
    finally:
        os.set_blocking(out_fd, True)


def pump(
    out_fd: int,
    log: CappedLog,
    done: Callable[[], bool],
    deadline: float | None,
    wake_fd: int | None = None,
    tick_s: float = 1.0,
) -> bool:
    """Copy `out_fd` into `log` until `done()` (the child exited); True if `deadline`
    (time.monotonic) passed first.

    Waits in one `select` on the pipe and `wake_fd` (a signal wake-up pipe: SIGCHLD ends the
    wait at once); without one it checks `done()` every `tick_s`. The pipe may stay open
    after the child exits (a background process inherited it): `done()`, not end of file,
    ends the pump.
    """
    with selectors.DefaultSelector() as sel:
        sel.register(out_fd, selectors.EVENT_READ)
        if wake_fd is not None:
            sel.register(wake_fd, selectors.EVENT_READ)
        while not done():
            timeout = tick_s if deadline is None else min(tick_s, deadline - time.monotonic())
            if timeout <= 0:
                return True
            for key, _ in sel.select(timeout):
                if key.fd == wake_fd:
                    _empty(key.fd)
                    continue
                data = os.read(out_fd, CHUNK)
                if data:
                    log.write(data)
                else:  # end of file: nothing more can come; wait for the exit alone
                    sel.unregister(out_fd)
    return False


def _empty(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass
