"""A scratch project whose agent is the hostile one, and ways to drive the controller."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

from tests.support import HOSTILE_AGENT
from tests.support.project import Project, wait_until
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
        assert result.returncode in (0, 1, 4), result.stdout + result.stderr  # 4: an action failed
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


def cli_bounded(
    p: Project, *args: str, timeout: float = 30, memory: int = 3 << 30
) -> subprocess.CompletedProcess[str]:
    """The CLI with a deadline and an address-space cap: a command that blocks on a planted
    pipe fails the test by timing out, one that reads /dev/zero by MemoryError, and neither
    takes the machine's memory with it."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run(
        [sys.executable, "-m", "controller", *args, "-f", str(p.spec_file)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=p.tmp,
        env=p.env(),
        preexec_fn=cap,
    )


def start_record_pid(p: Project, task: str, number: int = 1) -> int | None:
    """The pid the runs folder's start record names (whatever wrote it), or None."""
    path = p.state / "runs" / task / f"{number}.start.json"
    try:
        pid = json.loads(path.read_text()).get("pid")
    except (OSError, ValueError):
        return None
    return pid if isinstance(pid, int) else None


def stop_all(p: Project, keep: list[dict[str, Any]]) -> None:
    """Stop this project's running agents: keep only `keep` in the backlog and reconcile."""
    p.write_spec(backlog=keep)
    cli_bounded(p, "reconcile")


def wait_dead(pid: int, timeout: float = 20) -> bool:
    """True once `pid` is gone (or a zombie) within `timeout` seconds."""

    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    return wait_until(gone, timeout=timeout)


def kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
