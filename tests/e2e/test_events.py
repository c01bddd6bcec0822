"""`orchestrator events --follow` against a live controller, and the log's filters after it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.project import Project, stop_process, task, wait_until
from tests.support.views import agents_spec, invoke, kill_own_agents, own_agent, rows_or_empty


@pytest.mark.timeout(60)
def test_follow_sees_every_event_once_and_filters_work(tmp_path: Path) -> None:
    agent = own_agent(tmp_path)
    p = Project(
        tmp_path,
        retries=0,
        agents=agents_spec(agent, "dev"),
        backlog=[task("a", "sleep 0.3"), task("b", "exit 4")],
    )
    code, out, _ = invoke(p, "events")
    assert (code, out) == (0, "") and not p.state.exists()  # no database: nothing, created nothing
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controller",
            "events",
            "--follow",
            "-o",
            "json",
            "-f",
            str(p.spec_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=p.tmp,
        env=p.env(),
    )
    proc = p.watch()
    try:

        def done() -> bool:
            failed = [r for r in rows_or_empty(p) if r["task"] == "b" and r["outcome"]]
            return "a" in p.merges() and bool(failed)

        assert wait_until(done, timeout=30), stop_process(proc)
        stop_process(proc)  # graceful: writes controller_stop
        time.sleep(1.2)  # two polls of the follower
        follower.send_signal(signal.SIGINT)
        out, err = follower.communicate(timeout=15)
    finally:
        stop_process(proc)
        if follower.poll() is None:
            follower.kill()
        kill_own_agents(agent)
    assert follower.returncode == 0, err
    followed = [json.loads(line) for line in out.splitlines()]
    code, out, err = invoke(p, "events", "-o", "json")
    assert code == 0, err
    logged = json.loads(out)
    assert [e["id"] for e in followed] == [e["id"] for e in logged]  # all, once, in order
    kinds = [e["kind"] for e in logged]
    assert kinds[0] == "controller_start" and kinds[-1] == "controller_stop"
    assert {"spawn", "exit", "merge", "prune"} <= set(kinds)

    code, out, _ = invoke(p, "events", "--task", "b", "-o", "json")
    only_b = json.loads(out)
    assert only_b and {e["task"] for e in only_b} == {"b"}
    assert any(e["message"] == "attempt 1 failed: exit 4" for e in only_b)
    code, out, _ = invoke(p, "events", "--kind", "merge,exit", "--kind", "prune")
    lines = out.splitlines()
    assert lines and all(ln.split()[2] in ("merge", "exit", "prune") for ln in lines)
    assert any(ln.split()[2:4] == ["merge", "a"] for ln in lines)
    code, out, _ = invoke(p, "events", "--tail", "2", "-o", "json")
    assert [e["id"] for e in json.loads(out)] == [e["id"] for e in logged[-2:]]
    code, out, err = invoke(p, "events", "--kind", "nonsense")
    assert code == 0 and out == "" and "unknown event kind" in err
    code, _, err = invoke(p, "events", "--tail", "-1")
    assert code == 1 and "--tail" in err
