"""The Ray job's entrypoint (`act.runners.ray_entry`) run as a process on this machine, with
a bare repository as the remote: what it does with the agent's work when the agent times out,
when the job is stopped (SIGTERM from Ray), and when the push fails. No Ray cluster is needed
for these; `tests/e2e/test_ray_runner.py` runs the same paths through a real one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from controller.act.runners.ray_entry import KEPT_MARKER, PUSH_FAILED_EXIT, encode_payload
from tests.support import ROOT
from tests.support.repo import GIT_ENV, git, init_repo

pytestmark = pytest.mark.timeout(60)

AGENT = (
    "import os, pathlib, sys, time\n"
    "pathlib.Path(sys.argv[1], 'work.txt').write_text('half done\\n')\n"
    "pathlib.Path(os.environ['PID_FILE']).write_text(str(os.getpid()))\n"
    "time.sleep(float(sys.argv[2]))\n"
)


def setup(tmp_path: Path, sleep_s: float, **extra: Any) -> tuple[list[str], Path, Path]:
    """(argv of the entrypoint, the bare remote, the agent's pid file)."""
    repo = init_repo(tmp_path / "repo")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "push", "-q", str(remote), "main:refs/orchestrator/base/t/1")
    payload = {
        "task": "t",
        "number": 1,
        "branch": "orchestrator/t",
        "base_ref": "refs/orchestrator/base/t/1",
        "fresh": False,
        "remote": str(remote),
        "command": [sys.executable, "-c", AGENT, "{worktree}", str(sleep_s)],
        "values": {"task": "t", "attempt": "1"},
        "env": {"ORCHESTRATOR_TASK": "t"},
        "pass_env": [],
        "timeout_s": None,
        "grace_s": 1.0,
        **extra,
    }
    argv = [sys.executable, "-m", "controller.act.runners.ray_entry", encode_payload(payload)]
    return argv, remote, tmp_path / "agent.pid"


def start(argv: list[str], tmp_path: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **GIT_ENV, "PYTHONPATH": str(ROOT), **env},
        start_new_session=True,  # as Ray starts an entrypoint
    )


def pushed(remote: Path) -> str | None:
    proc = subprocess.run(
        ["git", "-C", str(remote), "show", "refs/heads/orchestrator/t:work.txt"],
        capture_output=True,
        text=True,
    )
    return proc.stdout if proc.returncode == 0 else None


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_for(predicate: Any, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def test_a_timeout_stops_the_agent_and_pushes_its_work(tmp_path: Path) -> None:
    argv, remote, pid_file = setup(tmp_path, 60, timeout_s=1.0)
    proc = start(argv, tmp_path, PID_FILE=str(tmp_path / "agent.pid"))
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 124, out
    assert pushed(remote) == "half done\n"  # saved, not deleted with the checkout
    assert gone(int(pid_file.read_text()))
    assert "agent timed out" in out


def test_a_job_stop_reaches_the_agent_and_its_work_is_pushed(tmp_path: Path) -> None:
    """Ray's stop: SIGTERM to the entrypoint and its processes, SIGKILL 3 s later. The
    agent (in a session of its own) is stopped, and its work still reaches the remote."""
    argv, remote, pid_file = setup(tmp_path, 60)
    proc = start(argv, tmp_path, PID_FILE=str(pid_file))
    try:
        assert wait_for(lambda: pid_file.exists() and pid_file.read_text())
        agent = int(pid_file.read_text())
        members = [proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(True))]
        for pid in members:  # what Ray's job supervisor does
            os.kill(pid, signal.SIGTERM)
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            for pid in members:
                os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: pushed(remote) == "half done\n", 15)
        assert wait_for(lambda: gone(agent), 10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_failed_push_keeps_the_work_in_a_named_folder(tmp_path: Path) -> None:
    argv, remote, pid_file = setup(tmp_path, 2)
    kept = tmp_path / "kept"
    proc = start(argv, tmp_path, PID_FILE=str(pid_file), ORCHESTRATOR_KEEP_DIR=str(kept))
    assert wait_for(pid_file.exists)
    remote.rename(tmp_path / "remote-gone.git")  # the remote went away meanwhile
    out, _ = proc.communicate(timeout=40)
    assert proc.returncode == PUSH_FAILED_EXIT, out
    assert out.count("push ") >= 3  # tried three times
    marker = next(ln for ln in out.splitlines() if ln.startswith(KEPT_MARKER))
    where = Path(json.loads(marker[len(KEPT_MARKER) :])["path"])
    assert where.parent == kept and where.name.startswith("t-1-")
    assert (where / "work.txt").read_text() == "half done\n"
    assert git(where, "show", "HEAD:work.txt") == "half done"  # committed, ready to push
    assert f"it is kept on {os.uname().nodename} in {where}" in out
