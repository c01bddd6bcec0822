"""A scratch project whose agent is the hostile one, and ways to drive the controller."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.support import HOSTILE_AGENT
from tests.support.project import Project
from tests.support.repo import git


class HostileProject(Project):
    """A scratch project whose agent `dev` is the hostile agent (scope `src/**`).

    `extra_env` is added to the environment of every CLI process (and so of the agents).
    """

    owns: tuple[str, ...] = ("src/**",)

    def __init__(self, tmp: Path, **spec: Any) -> None:
        self.extra_env: dict[str, str] = {}
        super().__init__(tmp, **spec)

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.extra_env}

    def base_spec(self) -> dict[str, Any]:
        spec = super().base_spec()
        spec["agents"] = {
            "dev": {"command": [sys.executable, HOSTILE_AGENT], "owns": list(self.owns)}
        }
        return spec


def hostile_project(tmp: Path, **spec: Any) -> HostileProject:
    return HostileProject(tmp, **spec)


def job(task_id: str, *lines: str, **extra: Any) -> dict[str, Any]:
    """A backlog task whose prompt is the hostile agent's directives."""
    return {"id": task_id, "agent": "dev", "prompt": "\n".join(lines), **extra}


def run_json(*argv: str) -> str:
    return "run " + json.dumps(list(argv))


def passes(p: Project, n: int = 12, until: Any = None) -> None:
    """One-shot reconcile passes (merges in line) until `until()` holds, at most `n`."""
    import time

    for _ in range(n):
        result = p.cli("reconcile")
        assert result.returncode in (0, 1), result.stdout + result.stderr
        if until is not None and until():
            return
        time.sleep(0.3)


def attempts(p: Project, task: str) -> list[dict[str, Any]]:
    out = p.cli("status", "-o", "json")
    data = json.loads(out.stdout)
    return [t for t in data["tasks"] if t["task"] == task]


def phase(p: Project, task: str) -> tuple[str, str]:
    found = attempts(p, task)
    return (found[0]["phase"], found[0]["reason"]) if found else ("", "")


def head(repo: Path, ref: str = "main") -> str:
    return git(repo, "rev-parse", ref)


def commit_on_main(repo: Path, rel: str, text: str, message: str) -> str:
    """A person's commit in the user's checkout (on main when main is checked out)."""
    (repo / rel).parent.mkdir(parents=True, exist_ok=True)
    (repo / rel).write_text(text)
    git(repo, "add", rel)
    git(repo, "commit", "-q", "-m", message)
    return head(repo, "HEAD")
