"""The command line as a process: `validate` on the example spec, usage errors' exit codes.

Runs the installed console script when there is one, else `python -m controller`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT
from tests.support.claude import BINARY as CLAUDE
from tests.support.repo import GIT_ENV, init_repo

PROJECT_ROOT = ROOT
EXAMPLE = PROJECT_ROOT / "specs" / "example.yaml"


def orchestrator(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed console script when there is one, else `python -m controller`."""
    script = Path(sys.executable).parent / "orchestrator"
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "controller"]
    env = {**os.environ, **GIT_ENV, "NO_COLOR": "1", "PYTHONPATH": str(PROJECT_ROOT)}
    env["PATH"] = f"{CLAUDE.parent}{os.pathsep}{env['PATH']}"  # the example's agents need it
    return subprocess.run(
        [*argv, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=60
    )


@pytest.fixture
def project(tmp_path: Path, claude_bin: Path) -> Path:
    """A real repository with the example spec in specs/orchestrator.yaml (its agents are
    Claude Code runs: validate checks that the binary is there)."""
    init_repo(tmp_path)
    target = tmp_path / "specs" / "orchestrator.yaml"
    target.parent.mkdir()
    shutil.copy(EXAMPLE, target)
    return tmp_path


def test_validate_accepts_a_valid_spec(project: Path) -> None:
    done = orchestrator("validate", cwd=project)  # the default -f specs/orchestrator.yaml
    assert done.returncode == 0, done.stderr
    assert "valid (4 agents, 10 tasks" in done.stdout
    assert "integration branch main" in done.stdout
    assert done.stderr == ""


def test_validate_json_on_a_valid_spec(project: Path) -> None:
    done = orchestrator("validate", "-f", "specs/orchestrator.yaml", "-o", "json", cwd=project)
    assert done.returncode == 0, done.stderr
    expected = {"valid": True, "problems": [], "warnings": [], "tasks": 10}
    assert json.loads(done.stdout) == expected


def test_usage_errors_exit_1_not_2(tmp_path: Path) -> None:
    done = orchestrator("diff", "--bogus-flag", cwd=tmp_path)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "--bogus-flag" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_unknown_command_exits_1(tmp_path: Path) -> None:
    done = orchestrator("frobnicate", cwd=tmp_path)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "frobnicate" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
