"""logcap: a log kept under its limit keeps the end of the output; the pump copies a child's
output and ends when the child exits, even if a leftover process keeps the pipe open."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller.act.runners import logcap

pytestmark = pytest.mark.timeout(20)


def capped(path: Path, limit: int | None) -> logcap.CappedLog:
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    return logcap.CappedLog(fd, limit)


def test_a_log_under_its_limit_is_left_alone(tmp_path: Path) -> None:
    log = capped(tmp_path / "log", 1000)
    for i in range(10):
        log.write(f"line {i}\n".encode())
    assert (tmp_path / "log").read_text() == "".join(f"line {i}\n" for i in range(10))


def test_the_oldest_output_is_dropped_and_the_end_kept(tmp_path: Path) -> None:
    path = tmp_path / "log"
    log = capped(path, 64 * 1024)
    lines = [f"line {i:06d}\n".encode() for i in range(50_000)]  # 600 KB
    for line in lines:
        log.write(line)
    data = path.read_bytes()
    assert len(data) <= 64 * 1024
    note, _, rest = data.partition(b"\n")
    assert note.startswith(b"[orchestrator: ") and b"earlier bytes of output dropped" in note
    dropped = int(note.split()[1])
    kept = rest.splitlines(keepends=True)
    assert kept == lines[-len(kept) :]  # whole lines, the newest ones, in order
    assert dropped == sum(map(len, lines)) - len(rest)  # the note counts what went
    assert len(rest) >= 32 * 1024 - len(lines[0])


def test_no_limit_means_no_trim(tmp_path: Path) -> None:
    log = capped(tmp_path / "log", None)
    log.write(b"x" * 200_000)
    assert (tmp_path / "log").stat().st_size == 200_000


def test_pump_copies_output_and_ends_at_exit_despite_a_leftover(tmp_path: Path) -> None:
    """The child exits while a background process it started still holds the pipe."""
    out_r, out_w = os.pipe()
    code = (
        "import subprocess, sys\n"
        "subprocess.Popen(['sleep', '30'])\n"  # inherits stdout: the pipe stays open
        "print('hello from the child', flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=out_w, start_new_session=True)
    os.close(out_w)
    log = capped(tmp_path / "log", None)
    started = time.monotonic()
    try:
        timed_out = logcap.pump(out_r, log, lambda: proc.poll() is not None, None, tick_s=0.05)
        assert not timed_out and time.monotonic() - started < 10
        logcap.drain(out_r, log)
        assert (tmp_path / "log").read_text() == "hello from the child\n"
    finally:
        os.killpg(proc.pid, 9)
        os.close(out_r)


def test_pump_reports_a_deadline(tmp_path: Path) -> None:
    out_r, out_w = os.pipe()
    proc = subprocess.Popen(["sleep", "30"], stdout=out_w)
    os.close(out_w)
    try:
        deadline = time.monotonic() + 0.3
        assert logcap.pump(out_r, capped(tmp_path / "log", None), lambda: False, deadline)
    finally:
        proc.kill()
        proc.wait()
        os.close(out_r)


def test_a_failing_write_loses_that_output_only(tmp_path: Path) -> None:
    """A full disk must not stop the pump (the shim would die and leave its agent behind)."""
    path = tmp_path / "log"
    log = capped(path, None)
    real = log.fd
    log.write(b"before\n")
    log.fd = os.open("/dev/full", os.O_WRONLY)  # every write: ENOSPC
    log.write(b"lost one\n")
    log.write(b"lost two\n")
    os.close(log.fd)
    log.fd = real
    log.write(b"after\n")
    assert path.read_text() == (
        "before\n[orchestrator: 18 bytes of output lost: No space left on device]\nafter\n"
    )
