"""An attempt's log and its verify log, read for `orchestrator logs` and the dashboard.

The logs live in the state folder (`state/logs/<task>/<n>.log`, `<n>.verify.log`), where an
agent can write too: each one is opened through `state.files`, so a symlink or named pipe an
agent planted in its place is refused (never followed, never blocked on), and read as bytes
in chunks (a log may be 50 MB). Following (`-f`) reads the same descriptor as it grows; when
the controller trims a log that outgrew its limit (the oldest output dropped in place,
`act.runners.logcap`), reading goes on from the new end with a note. Text is decoded with
undecodable bytes kept (`surrogateescape`), and made safe for a terminal where it is shown.
"""

from __future__ import annotations

import codecs
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from controller.model.spec import Spec
from controller.observe.procs import is_alive
from controller.state import files
from controller.state.paths import StatePaths
from controller.state.store import AttemptRow, Store, StoreError

CHUNK = 1 << 16
FOLLOW_STEP_S = 0.2
RECENT = 4096  # bytes of what was printed last, looked for in a trimmed log to go on after
RESUMED = "\n[orchestrator logs: the log was trimmed (its oldest output dropped); going on]\n"
TRIMMED = "\n[orchestrator logs: the log was trimmed to its newest part; following from its end]\n"


@dataclass(frozen=True)
class LogRef:
    """One log of one attempt: where it is, and what the store says of the attempt."""

    task: str
    attempt: int
    verify: bool
    path: Path
    row: AttemptRow | None  # None: no row in the store (yet)

    @property
    def what(self) -> str:
        kind = "verify log" if self.verify else "log"
        state = self.row.outcome if self.row is not None and self.row.outcome else "no verdict yet"
        reason = f": {self.row.reason}" if self.row is not None and self.row.reason else ""
        return f"{kind} of {self.task} attempt {self.attempt} ({state}{reason})"


def attempt_rows(spec: Spec, task: str) -> list[AttemptRow]:
    """The store's rows of `task`'s attempts (none when there is no database yet)."""
    try:
        store = Store.open_readonly(StatePaths(spec.state_path).db)
    except (StoreError, sqlite3.Error, OSError):
        return []
    if store is None:
        return []
    try:
        return store.attempts(task)
    finally:
        store.close()


def logged_attempts(paths: StatePaths, task: str) -> list[int]:
    """Attempt numbers that have a log file of `task` (the logs folder, read safely)."""
    try:
        with files.directory(paths.root, ["logs", task]) as fd:
            names = os.listdir(fd)
    except (OSError, ValueError):
        return []
    numbers = {int(n.split(".", 1)[0]) for n in names if n.split(".", 1)[0].isdigit()}
    return sorted(numbers)


def known_tasks(spec: Spec) -> list[str]:
    """Task ids `logs` and `events` accept: the spec's, and those with records."""
    ids = [t.id for t in spec.backlog] + sorted(spec.completed)
    paths = StatePaths(spec.state_path)
    try:
        with files.directory(paths.root, ["logs"]) as fd:
            ids += sorted(n for n in os.listdir(fd) if not n.endswith(".log"))
    except (OSError, ValueError):
        pass
    return list(dict.fromkeys(ids))


def log_ref(spec: Spec, task: str, attempt: int | None, verify: bool) -> LogRef | str:
    """The log asked for (the latest attempt's when `attempt` is None), or why there is none."""
    paths = StatePaths(spec.state_path)
    rows = {r.number: r for r in attempt_rows(spec, task)}
    numbers = sorted(set(rows) | set(logged_attempts(paths, task)))
    if not numbers:
        return f"{task} has not run yet: no attempt, no log"
    n = numbers[-1] if attempt is None else attempt
    if n not in numbers:
        return f"{task} has no attempt {n} (attempts: {', '.join(map(str, numbers))})"
    path = paths.verify_log(task, n) if verify else paths.task_log(task, n)
    return LogRef(task, n, verify, path, rows.get(n))


def finished(spec: Spec, ref: LogRef) -> Callable[[], bool]:
    """A check `follow` asks each step: has the attempt (or its merge, for a verify log)
    finished, so that no more output will come?"""
    paths = StatePaths(spec.state_path)

    def check() -> bool:
        rows = {r.number: r for r in attempt_rows(spec, ref.task)}
        row = rows.get(ref.attempt)
        if ref.verify:  # the merge is over once the attempt has a verdict other than "exited 0"
            return row is not None and row.outcome not in (None, "succeeded")
        if os.path.lexists(paths.exit_record(ref.task, ref.attempt)):
            return True
        if row is None or row.pid is None:
            return row is not None and row.outcome is not None
        return row.exit_code is not None or not is_alive(row.pid, row.create_time)

    return check


def _decode(chunks: Iterator[bytes]) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    for chunk in chunks:
        text = decoder.decode(chunk)
        if text:
            yield text
    rest = decoder.decode(b"", final=True)
    if rest:
        yield rest


def _read_from(fd: int, offset: int) -> Iterator[bytes]:
    while True:
        chunk = os.pread(fd, CHUNK, offset)
        if not chunk:
            return
        offset += len(chunk)
        yield chunk


def read_text(root: Path, path: Path, *, tail_bytes: int | None = None) -> Iterator[str]:
    """The log's text (its last `tail_bytes` only, if given); UnsafeFile for a planted
    symlink, pipe or device, FileNotFoundError when there is no such log."""
    fd = files.open_read(root, path)
    try:
        size = os.fstat(fd).st_size
        start = 0 if tail_bytes is None else max(0, size - tail_bytes)
        yield from _decode(_read_from(fd, start))
    finally:
        os.close(fd)


def follow(
    root: Path, path: Path, done: Callable[[], bool], *, wait_s: float = 60.0
) -> Iterator[str]:
    """The log's text from its start, then what is appended, until `done()` (then what is
    left). Waits up to `wait_s` for a log that does not exist yet (an attempt starting)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fd = files.open_read(root, path)
            break
        except FileNotFoundError:
            if done() or time.monotonic() > deadline:
                raise
            time.sleep(FOLLOW_STEP_S)
    try:
        yield from _follow_fd(fd, done)
    finally:
        os.close(fd)


def resume_at(fd: int, recent: bytes) -> int | None:
    """Where to go on in a log trimmed in place: just after the last output printed, which
    the kept newest part still holds (None when it does not)."""
    if not recent:
        return 0
    data = b"".join(_read_from(fd, 0))
    found = data.rfind(recent)
    return None if found < 0 else found + len(recent)


def _follow_fd(fd: int, done: Callable[[], bool]) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    offset, recent = 0, b""
    while True:
        finishing = done()  # asked before reading: what was written before it is read after
        size = os.fstat(fd).st_size
        if size < offset:  # trimmed in place (logcap): go on after what was printed
            at = resume_at(fd, recent)
            yield RESUMED if at is not None else TRIMMED
            offset = at if at is not None else size
        for chunk in _read_from(fd, offset):
            offset += len(chunk)
            recent = (recent + chunk)[-RECENT:]
            text = decoder.decode(chunk)
            if text:
                yield text
        if finishing:
            rest = decoder.decode(b"", final=True)
            if rest:
                yield rest
            return
        time.sleep(FOLLOW_STEP_S)


def tail_lines(root: Path, path: Path, lines: int, *, max_bytes: int = 1 << 20) -> list[str]:
    """The last `lines` lines of a log (from its last `max_bytes`), for the dashboard."""
    text = "".join(read_text(root, path, tail_bytes=max_bytes))
    return text.splitlines()[-lines:] if lines > 0 else []
