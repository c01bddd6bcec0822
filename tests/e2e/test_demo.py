"""`orchestrator demo`, the README's first quick-start command, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT


@pytest.mark.timeout(180)
def test_demo_converges_and_reports_what_it_measured(tmp_path: Path) -> None:
    where = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "controller", "demo", "--dir", str(where), "--seconds", "0.4"],
        capture_output=True,
        text=True,
        timeout=170,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "10/10 tasks merged into main" in result.stdout
    assert "measured parallelism" in result.stdout
    # the retries are counted, not a fixed sentence: a crash and a conflict in this demo
    assert "retries, after 1 crash and 1 merge conflict)" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    merged = subprocess.run(
        ["git", "-C", str(where / "repo"), "log", "--first-parent", "--format=%s", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert merged.count("Merge task ") == 10
