"""Attacks on the controller's process handling and on its resources: a forged start record
must not get another process killed (finding 5); logs are capped, processes an agent leaves
behind die with its attempt, and what the state folder holds is the user's alone (finding
10). See docs/security.md.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import psutil
import pytest

from tests.security.hostile import (
    cli_bounded,
    hostile_project,
    job,
    kill_quietly,
    passes,
    phase,
    start_record_pid,
    stop_all,
    wait_dead,
)
from tests.support import HOSTILE_AGENT
from tests.support.project import Project, wait_until

pytestmark = pytest.mark.timeout(150)


# --- 5. a record written by an agent never names a process to signal ---------------------------


def test_a_forged_start_record_gets_no_other_process_killed(tmp_path: Path) -> None:
    """The agent overwrites its start record with a victim's pid and create time (the
    victim leads its own process group, like any program the user runs); removing the task
    from the spec stops the attempt. Only the agent's own processes may die."""
    victim = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        created = psutil.Process(victim.pid).create_time()
        attack = job("fp", f"forge-start {victim.pid} {created}", "sleep 60")
        keep = job("keep", "write src/keep.py: keep", "commit keep")
        p = hostile_project(tmp_path, backlog=[attack, keep])
        assert cli_bounded(p, "reconcile").returncode == 0
        assert wait_until(lambda: start_record_pid(p, "fp") == victim.pid, timeout=30)
        assert _agents_of(p, "fp")
        stop_all(p, [keep])  # `fp` removed from the spec: its attempt is stopped
        assert victim.poll() is None, "the victim named by the forged record was killed"
        assert wait_until(lambda: not _agents_of(p, "fp"), timeout=20), "the agent still runs"
    finally:
        victim.kill()
        victim.wait()


def _agents_of(p: Project, task: str) -> list[int]:
    """Live hostile-agent processes of `task` in this project."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            argv = proc.info["cmdline"] or []
            if proc.info["status"] == psutil.STATUS_ZOMBIE or argv[1:2] != [HOSTILE_AGENT]:
                continue
            env = proc.environ()
        except psutil.Error:
            continue
        ours = env.get("ORCHESTRATOR_WORKTREE", "").startswith(str(p.tmp))
        if ours and env.get("ORCHESTRATOR_TASK") == task:
            found.append(proc.pid)
    return found


# --- 10. caps: log size, leftover processes, who can read the state folder ---------------------


def test_a_100mb_agent_log_is_capped_keeping_its_end(tmp_path: Path) -> None:
    """An agent writes 100 MB to stdout: its log keeps to the default 50MB limit, and it is
    the end of the output that is kept."""
    attack = job("big", "spew 100", "write src/big.py: big", "commit big")
    p = hostile_project(tmp_path, backlog=[attack])
    passes(p, n=30, until=lambda: phase(p, "big")[0] in ("merged", "failed", "rejected"))
    assert phase(p, "big")[0] == "merged", phase(p, "big")
    log = p.state / "logs" / "big" / "1.log"
    size = log.stat().st_size
    assert size <= 50 << 20, f"log is {size} bytes"
    assert size >= 20 << 20  # the newest half of the limit, at least, is kept
    with log.open("rb") as fh:
        head = fh.read(200)
        fh.seek(-200, os.SEEK_END)
        tail = fh.read()
    assert head.startswith(b"[orchestrator: ") and b"earlier bytes of output dropped" in head
    assert b"THE END\nbig attempt 1 done\n" in tail


def test_a_setsid_child_dies_with_its_attempt(tmp_path: Path) -> None:
    """The agent leaves a process behind that left its session with `setsid` and was
    orphaned (double fork): it used to outlive the attempt. It dies when the agent exits."""
    pid_file = tmp_path / "daemon.pid"
    attack = job("ds", f"daemon {pid_file}", "write src/ds.py: ds", "commit ds")
    p = hostile_project(tmp_path, backlog=[attack])
    pid = None
    try:
        assert cli_bounded(p, "reconcile").returncode == 0
        assert wait_until(pid_file.exists, timeout=30)
        pid, sid, agent_sid = map(int, pid_file.read_text().split())
        assert sid != agent_sid  # it really left the attempt's session
        assert wait_until(lambda: (p.state / "runs" / "ds" / "1.exit.json").exists(), timeout=30)
        assert wait_dead(pid, timeout=5), "the setsid'd child outlived its attempt"
        passes(p, n=20, until=lambda: phase(p, "ds")[0] in ("merged", "failed"))
        assert phase(p, "ds")[0] == "merged", phase(p, "ds")
    finally:
        if pid is not None:
            kill_quietly(pid)


def test_a_setsid_child_dies_when_its_attempt_times_out(tmp_path: Path) -> None:
    """The same left-behind process, when the attempt is killed by its timeout."""
    pid_file = tmp_path / "daemon.pid"
    attack = job("dt", f"daemon {pid_file}", "sleep 60", timeout="2s", retries=0)
    p = hostile_project(tmp_path, backlog=[attack])
    pid = None
    try:
        assert cli_bounded(p, "reconcile").returncode == 0
        assert wait_until(pid_file.exists, timeout=30)
        pid = int(pid_file.read_text().split()[0])
        assert wait_until(lambda: (p.state / "runs" / "dt" / "1.exit.json").exists(), timeout=30)
        assert wait_dead(pid, timeout=5), "the setsid'd child outlived its attempt"
    finally:
        if pid is not None:
            kill_quietly(pid)


def test_the_state_folder_and_logs_are_the_users_alone(tmp_path: Path) -> None:
    """Prompts and agent output must not be readable by other users: the state folder is
    0700 and logs and records 0600, whatever the umask."""
    attack = job("pm", "write src/pm.py: pm", "commit pm")
    p = hostile_project(tmp_path, verify=["true"], backlog=[attack])
    old = os.umask(0o022)
    try:
        passes(p, n=20, until=lambda: phase(p, "pm")[0] in ("merged", "failed"))
    finally:
        os.umask(old)
    assert phase(p, "pm")[0] == "merged", phase(p, "pm")

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(p.state) == 0o700
    for rel in ("logs/pm/1.log", "logs/pm/1.verify.log", "logs/controller.log"):
        assert mode(p.state / rel) == 0o600, rel
    for rel in ("runs/pm/1.start.json", "runs/pm/1.exit.json"):
        assert mode(p.state / rel) == 0o600, rel
