"""Helpers for end-to-end tests: a scratch project (repo + spec), the real CLI, waiting.

Specs are written as JSON, which is valid YAML, so tests can build them as dicts.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from tests.support import FAKE_AGENT, ROOT
from tests.support.repo import GIT_ENV, git, init_repo


def task(task_id: str, prompt: str = "", **extra: Any) -> dict[str, Any]:
    return {"id": task_id, "agent": "dev", "prompt": prompt, "paths": [f"{task_id}.txt"], **extra}


class Project:
    """A repo under tmp/repo and a spec under tmp/specs/orchestrator.yaml."""

    def __init__(self, tmp: Path, **spec: Any):
        self.tmp = tmp
        self.repo = init_repo(tmp / "repo")
        self.spec_file = tmp / "specs" / "orchestrator.yaml"
        self.spec_file.parent.mkdir(parents=True, exist_ok=True)
        self.agent_log = tmp / "agents.log"
        self.state = tmp / "state"
        self.write_spec(**spec)

    def base_spec(self) -> dict[str, Any]:
        return {
            "apiVersion": "orchestrator/v1",
            "repo": "../repo",
            "integrationBranch": "main",
            "maxParallel": 3,
            "pollInterval": "2s",
            "retries": 2,
            "backoff": {"initial": "0.2s", "max": "0.5s"},
            "timeout": "30s",
            "resources": {"cpu": [{"parallel": 8}], "memory": [{"parallel": 8}]},
            "agents": {"dev": {"command": [sys.executable, FAKE_AGENT], "owns": ["**"]}},
            "backlog": [],
        }

    def write_spec(self, **overrides: Any) -> None:
        spec = self.base_spec()
        spec.update(overrides)
        tmp = self.spec_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(spec, indent=2))
        os.replace(tmp, self.spec_file)  # editors save by rename, so do we

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **GIT_ENV,
            "FAKE_AGENT_LOG": str(self.agent_log),
            "PYTHONPATH": str(ROOT),
        }

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "controller", *args, "-f", str(self.spec_file)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.tmp,
            env=self.env(),
        )

    def watch(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "controller", "reconcile", "--watch", "-f", str(self.spec_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.tmp,
            env=self.env(),
            start_new_session=True,
        )

    # -- world readers -------------------------------------------------------------------------
    def merges(self) -> list[str]:
        """Task ids of merge commits on main (first-parent), oldest first, with repeats."""
        out = git(
            self.repo,
            "log",
            "--first-parent",
            "--reverse",
            "--format=%(trailers:key=Orchestrator-Task,valueonly,separator=%x2C)",
            "main",
        )
        return [line.strip() for line in out.splitlines() if line.strip()]

    def file_on_main(self, path: str) -> str | None:
        try:
            return git(self.repo, "show", f"main:{path}")
        except subprocess.CalledProcessError:
            return None

    def worktrees(self) -> list[str]:
        out = git(self.repo, "worktree", "list", "--porcelain")
        return [ln.split(" ", 1)[1] for ln in out.splitlines() if ln.startswith("worktree ")][1:]

    def agent_ends(self) -> list[tuple[str, int, int, float]]:
        """(task, attempt, pid, time) of every agent that ended normally (fake agents log it)."""
        return self._agent_log("end")

    def agent_starts(self) -> list[tuple[str, int, int, float]]:
        return self._agent_log("start")

    def _agent_log(self, wanted: str) -> list[tuple[str, int, int, float]]:
        if not self.agent_log.exists():
            return []
        rows = []
        for line in self.agent_log.read_text().splitlines():
            kind, t, n, pid, ts = line.split()
            if kind != wanted:
                continue
            rows.append((t, int(n), int(pid), float(ts)))
        return rows


def wait_until(predicate: Callable[[], bool], timeout: float = 30, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def fake_agents_running(root: Path) -> dict[str, list[int]]:
    """task id -> pids of live fake agents working under `root` (from the process table).

    Only agents of this test's project count: other tests (or other sessions) on the same
    machine run fake agents too.
    """
    found: dict[int, tuple[str, int]] = {}  # pid -> (task, parent pid)
    for proc in psutil.process_iter(["pid", "ppid", "cmdline", "status"]):
        try:
            cmd = proc.info["cmdline"] or []
            # the agent itself (python fake_agent.py), not the shim whose argv names it too
            if proc.info["status"] == psutil.STATUS_ZOMBIE or cmd[1:2] != [FAKE_AGENT]:
                continue
            env = proc.environ()
            if not env.get("ORCHESTRATOR_WORKTREE", "").startswith(str(root)):
                continue
            task_id = env.get("ORCHESTRATOR_TASK", "?")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found[proc.info["pid"]] = (task_id, proc.info["ppid"])
    running: dict[str, list[int]] = {}
    for pid, (task_id, parent) in found.items():
        # An agent forking to run git: until the child execs, it shows the agent's argv and
        # environment. It is not a second agent (this miscount made
        # test_controller_sigkilled_midway_converges_after_restart flaky).
        if found.get(parent, ("", 0))[0] != task_id:
            running.setdefault(task_id, []).append(pid)
    return running


def stop_process(proc: subprocess.Popen[str], timeout: float = 20) -> str:
    """Graceful stop (SIGTERM), then the output; kills the process group if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    return out or ""


def kill_fake_agents(root: Path) -> None:
    for pids in fake_agents_running(root).values():
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
