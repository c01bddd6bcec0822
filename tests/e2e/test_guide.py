"""The original user guide's command lines, in its order, on a scratch project.

`../shared/seed/parallel-execution-user-guide.md` is the promise the project is built on: a
user of that workflow must find every command and option they know. This walks through them
as the guide shows them (start with its options, status, the dashboard for a few seconds,
activity-summary, spawn-parallel, stop, then `start --max-parallel 2` as its troubleshooting
section advises) and checks what each one did, not only its exit code.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import FAKE_AGENT
from tests.support.project import Project, kill_fake_agents, stop_process, wait_until
from tests.support.terminal import run_in_pty

pytestmark = pytest.mark.timeout(120)

AGENTS = {
    "dev": {"command": [sys.executable, FAKE_AGENT], "owns": ["src/**"]},
    "architect": {"command": [sys.executable, FAKE_AGENT], "owns": ["docs/**"]},
    "ops": {"command": [sys.executable, FAKE_AGENT], "owns": ["ops/**"]},
}
SPEC_BACKLOG = {
    "agent": "architect",
    "ahead": 1,
    "path": "docs/specs/SPEC-{id}.md",
    "prompt": "write docs/specs/SPEC-{id}.md: the specification of {title}",
    "forAgents": ["dev"],
}


def dev(task_id: str, *lines: str) -> dict[str, Any]:
    prompt = "\n".join([*lines, f"write src/{task_id}.txt: {task_id}"])
    return {"id": task_id, "agent": "dev", "prompt": prompt, "paths": [f"src/{task_id}.txt"]}


def ops(task_id: str, *lines: str) -> dict[str, Any]:
    prompt = "\n".join([*lines, f"write ops/{task_id}.txt: {task_id}"])
    return {"id": task_id, "agent": "ops", "prompt": prompt, "paths": [f"ops/{task_id}.txt"]}


FIRST = [dev("us-001", "fail-until 2 1"), dev("us-002"), dev("us-003")]
SECOND = [ops("b1", "sleep 4"), ops("b2", "sleep 7"), ops("b3"), ops("priority-43")]


@pytest.fixture(autouse=True)
def _no_leftover_agents(tmp_path: Path):
    yield
    kill_fake_agents(tmp_path)


def guide_project(tmp_path: Path) -> Project:
    """Spec values the command line will visibly override: retries 0, specBacklog 1 ahead."""
    return Project(
        tmp_path,
        agents=AGENTS,
        maxParallel=4,
        pollInterval="2s",
        retries=0,
        backlog=FIRST,
        specBacklog=SPEC_BACKLOG,
    )


def start(p: Project, *options: str) -> subprocess.Popen[str]:
    """`orchestrator start [options]` in the background, as the guide runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "controller", "start", *options, "-f", str(p.spec_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=p.tmp,
        env=p.env(),
        start_new_session=True,
    )


def events(p: Project, kind: str) -> list[dict[str, Any]]:
    result = p.cli("events", "--kind", kind, "-o", "json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def stop(p: Project, proc: subprocess.Popen[str]) -> str:
    """`orchestrator stop`: graceful; the controller drains and exits 0."""
    result = p.cli("stop")
    assert result.returncode == 0, result.stderr
    assert "graceful stop requested" in result.stdout and "controller stopped" in result.stdout
    try:
        out, _ = proc.communicate(timeout=20)  # it exits by itself once drained
    except subprocess.TimeoutExpired:
        out = stop_process(proc)
    assert proc.returncode == 0, out
    return out


def test_the_guides_command_lines_in_order(tmp_path: Path) -> None:
    p = guide_project(tmp_path)
    # poetry run orchestrator start --poll-interval 60 --spec-backlog 5 --max-retries 3
    proc = start(p, "--poll-interval", "60", "--spec-backlog", "5", "--max-retries", "3")
    try:
        assert wait_until(lambda: len(p.agent_starts()) >= 3, timeout=30)
        # orchestrator status: the settings, where each comes from, tasks, resources
        status = p.cli("status")
        assert status.returncode == 0, status.stderr
        settings = re.search(r"^Settings:\s+(.*)$", status.stdout, re.MULTILINE)
        assert settings is not None, status.stdout
        assert settings.group(1) == (
            "maxParallel 4, pollInterval 60s (command line; spec says 2s), retries 3 (command "
            "line; spec says 0), specBacklog 5 ahead (command line; spec says 1 ahead)"
        )
        assert re.search(
            r"cpu \d+% \(allows \d+\), memory \d+% \(allows \d+\), disk \d+% used", status.stdout
        )
        assert re.search(r"^us-001-spec .*\[spec of us-001\]", status.stdout, re.MULTILINE)
        # orchestrator dashboard, for a few seconds on a terminal, then `q`
        argv = [sys.executable, "-m", "controller", "dashboard", "-f", str(p.spec_file)]
        code, screen = run_in_pty([*argv, "--interval", "0.5"], p.env(), p.tmp, b"q", after_s=2)
        assert code == 0, screen[-2000:]
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode(errors="replace"))
        for part in ("● running pid", "cpu ", "mem ", "disk ", "us-001", "recent events"):
            assert part in text, part
        assert wait_until(lambda: len(set(p.merges())) == 6, timeout=40), p.merges()
    finally:
        if proc.poll() is None:
            stop(p, proc)
    # --spec-backlog 5: the architect wrote the three specs at once (the spec allows one)
    spawns = [e for e in events(p, "spawn") if e["task"].endswith("-spec")]
    first_merge = min(e["id"] for e in events(p, "merge"))
    assert len([e for e in spawns if e["id"] < first_merge]) == 3
    # --max-retries 3: us-001 failed once and was retried (the spec says no retries)
    assert [e["task"] for e in events(p, "retry")] == ["us-001"]
    assert p.file_on_main("src/us-001.txt") == "us-001"
    # the command-line settings were recorded
    (recorded,) = events(p, "settings")
    assert recorded["data"]["overrides"] == {"pollInterval": 60, "retries": 3, "specBacklog": 5}
    # orchestrator activity-summary
    summary = p.cli("activity-summary")
    assert summary.returncode == 0, summary.stderr
    assert "6 completed (6 merged)" in summary.stdout
    assert "(1 retries, 1 failures)" in summary.stdout
    assert re.search(r"Parallelism:\s+\d+\.\d\dx agent time / busy time", summary.stdout)

    # the guide's troubleshooting: stop, then start --max-parallel 2
    p.write_spec(agents=AGENTS, maxParallel=4, retries=0, backlog=FIRST + SECOND)
    proc = start(p, "--max-parallel", "2")
    try:
        assert wait_until(lambda: {"b1", "b2"} <= {s[0] for s in p.agent_starts()}, timeout=30)
        # orchestrator spawn-parallel --priority 43: no slot now, so it is queued, first
        asked = p.cli("spawn-parallel", "--priority", "43")
        assert asked.returncode == 0, asked.stderr
        assert re.search(
            r"^priority-43  queued: requested at \d\d:\d\d:\d\d \(spawn-parallel\); "
            r"no slot: 2/2 \(maxParallel\)$",
            asked.stdout,
            re.MULTILINE,
        ), asked.stdout
        status = p.cli("status")
        assert "maxParallel 2 (command line; spec says 4)" in status.stdout
        row = next(ln for ln in status.stdout.splitlines() if ln.startswith("priority-43 "))
        assert "requested at" in row and "queued" in row
        diff = p.cli("diff")  # plans with the running controller's --max-parallel 2
        assert "running controller's settings: maxParallel 2" in diff.stderr
        planned = json.loads(p.cli("diff", "-o", "json").stdout)
        assert (planned["admission"]["max_parallel"], planned["admission"]["limit"]) == (2, 2)
        assert wait_until(lambda: len(set(p.merges())) == 10, timeout=40), p.merges()
    finally:
        if proc.poll() is None:
            out = stop(p, proc)
            assert "settings: maxParallel 2 (command line; spec says 4)" in out
    # asked first: priority-43 took the slot b1 freed, b3 (earlier in the backlog) the next
    spawned = [e["task"] for e in events(p, "spawn")]
    assert spawned[-4:] == ["b1", "b2", "priority-43", "b3"]
    assert [e["task"] for e in events(p, "request_done")] == ["priority-43"]
