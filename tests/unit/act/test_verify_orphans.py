"""Verify runs a killed controller left behind: noted beside their scratch worktree while
they run, stopped by the next start (`kill_orphans`), never a process that is not theirs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from controller.act.verify import kill_orphans, pid_file_for, run_verify

pytestmark = pytest.mark.timeout(30)


def orphan(
    scratch: Path, name: str, *, create_time: float | None = None
) -> subprocess.Popen[bytes]:
    """A verify-like process leading its own session, noted as the verify of `name`."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    created = psutil.Process(proc.pid).create_time() if create_time is None else create_time
    note = pid_file_for(scratch / name)
    note.write_text(json.dumps({"pid": proc.pid, "create_time": created}))
    return proc


def test_orphans_are_stopped_and_strangers_left_alone(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    left = orphan(scratch, "verify-aaaa")
    stranger = orphan(scratch, "verify-bbbb", create_time=1.0)  # pid reused by someone else
    try:
        assert kill_orphans(scratch) == [left.pid]
        assert left.wait(timeout=5) in (-15, -9)  # SIGTERM, SIGKILL after a grace
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_a_verify_run_notes_itself_only_while_it_runs(tmp_path: Path) -> None:
    cwd = tmp_path / "verify-cccc"
    cwd.mkdir()
    note = pid_file_for(cwd)
    script = f"import pathlib, sys; sys.exit(0 if pathlib.Path({str(note)!r}).exists() else 3)"
    failure = run_verify([sys.executable, "-c", script], cwd, tmp_path / "v.log", 10, pid_file=note)
    assert failure is None  # the note existed while it ran
    assert not note.exists()
