"""The verify command's environment: the session variables, what the spec passes and sets."""

from __future__ import annotations

from controller.act.verify import SESSION_ENV, verify_environment

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
