"""The verify command's environment: the session variables, what the spec passes and sets."""

from __future__ import annotations

import sys
from pathlib import Path

from controller.act.verify import SESSION_ENV, run_verify, verify_environment

CONTROLLER = {
    "PATH": "/usr/bin",
    "HOME": "/home/me",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "VIRTUAL_ENV": "/venv",
    "ANTHROPIC_API_KEY": "sk-secret",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "PYTHONPATH": "/home/me/project",
    "HTTP_PROXY": "http://u:p@proxy:3128",
}


def test_only_the_session_variables_by_default() -> None:
    env = verify_environment(source=CONTROLLER)
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "VIRTUAL_ENV": "/venv",
    }
    assert set(env) - {"LC_ALL"} <= set(SESSION_ENV)


def test_passed_names_then_set_values() -> None:
    env = verify_environment(
        ["HTTP_PROXY", "NOT_SET"], {"MODE": "ci", "HOME": "/tmp/h"}, CONTROLLER
    )
    assert env["HTTP_PROXY"] == "http://u:p@proxy:3128" and "NOT_SET" not in env
    assert env["MODE"] == "ci" and env["HOME"] == "/tmp/h"
    assert "ANTHROPIC_API_KEY" not in env and "PYTHONPATH" not in env


def test_a_failed_verify_says_its_last_line(tmp_path: Path) -> None:
    """The pitfall of a verify that names a test file a later task adds: pytest exits 4;
    the reason quotes what it said, not only the code."""
    say = "print('collected 0 items'); print('ERROR: file or directory not found: tests/b.py')"
    argv = [sys.executable, "-c", f"import sys; {say}; sys.exit(4)"]
    log = tmp_path / "state" / "1.verify.log"
    reason = run_verify(argv, tmp_path, log, 30.0, state_root=tmp_path / "state")
    assert reason == (
        f"verify exited with code 4 (ERROR: file or directory not found: tests/b.py); log: {log}"
    )
    quiet = [sys.executable, "-c", "import sys; sys.exit(3)"]
    reason = run_verify(quiet, tmp_path, log, 30.0, state_root=tmp_path / "state")
    assert reason == f"verify exited with code 3; log: {log}"
    assert run_verify([sys.executable, "-c", "print('ok')"], tmp_path, log, 30.0) is None
