"""Rate limits across the fleet, end to end: a 429 storm from the scripted Messages API server
against the real Claude Code CLI ends with every task merged and no retry used up by a 429;
a command agent's exit code and log line count as rate limits too, and a restarted
controller keeps backing off where the last one was (the limiter is in the store)."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.anthropic_server import AnthropicServer, call, say, write
from tests.support.claude import agent
from tests.support.project import FAKE_AGENT, Project, stop_process, wait_until

pytestmark = pytest.mark.timeout(150)


def rows(p: Project, table: str) -> list[dict[str, Any]]:
    con = sqlite3.connect(p.state / "orchestrator.db")
    con.row_factory = sqlite3.Row
    out = [dict(r) for r in con.execute(f"SELECT * FROM {table}")]  # noqa: S608 (a test)
    con.close()
    return out


def status(p: Project) -> dict[str, Any]:
    done = p.cli("status", "-o", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_429_storm_ends_with_every_task_merged_and_no_retry_used(
    tmp_path: Path, claude_bin: Path, anthropic: AnthropicServer
) -> None:
    n = 6
    for i in range(n):
        anthropic.add_script(f"t{i}", [call(write(f"t{i}.txt", f"{i}\n")), say("Written.")])
    # 12 requests needed, 2 allowed per 2 s across all clients: a storm for 4 at once
    anthropic.set_rate_limit(2, 2.0, retry_after=1)
    dev = agent(claude_bin, anthropic.url, rateLimit={"quiet": "3s", "backoff": "1s"})
    backlog = [
        {"id": f"t{i}", "agent": "dev", "prompt": f"[script:t{i}] write", "paths": [f"t{i}.txt"]}
        for i in range(n)
    ]
    p = Project(
        tmp_path, agents={"dev": dev}, maxParallel=4, retries=0, timeout="60s", backlog=backlog
    )
    proc = p.watch()
    try:
        done = wait_until(lambda: len(set(p.merges())) == n, timeout=100, step=0.3)
    finally:
        out = stop_process(proc, timeout=60)
    assert done, f"merged {p.merges()}\n{out}\n{p.cli('status').stdout}"

    stats = anthropic.stats()
    assert stats["rate_limited"] > 0  # it was a storm
    attempts = rows(p, "attempts")
    assert {r["outcome"] for r in attempts} <= {"merged", "rate_limited"}  # none failed
    for task in {r["task"] for r in attempts}:  # retries: 0, so each had one to use
        counted = [r for r in attempts if r["task"] == task and r["outcome"] != "rate_limited"]
        assert len(counted) == 1
    assert all(p.file_on_main(f"t{i}.txt") == str(i) for i in range(n))
    events = json.loads(p.cli("events", "-o", "json").stdout)
    fleet = [e for e in events if e["kind"] == "rate_limited" and e["task"] is None]
    assert fleet and fleet[0]["message"].startswith("claude-code: 429; nothing new starts until ")
    limited = [r for r in attempts if r["outcome"] == "rate_limited"]
    for r in limited:  # the reason is the 429, and the task went on to merge
        assert r["reason"].startswith("rate limited: API error 429")
    (limiter,) = rows(p, "rate_limits")
    assert limiter["provider"] == "claude-code" and limiter["strikes"] >= 0


def test_a_command_agent_s_rate_limit_and_a_restart_keeping_the_limiter(tmp_path: Path) -> None:
    cmd = {
        "command": [sys.executable, FAKE_AGENT],
        "owns": ["**"],
        "rateLimit": {"exitCodes": [75], "patterns": ["failing attempt"]},  # backoff: 30s
    }
    backlog = [
        {"id": "a", "agent": "cmd", "prompt": "fail-until 2 75", "paths": ["a.txt"]},
        {"id": "b", "agent": "cmd", "prompt": "fail-until 2 1", "paths": ["b.txt"]},
        {"id": "c", "agent": "cmd", "prompt": "sleep 1", "paths": ["c.txt"]},
    ]
    p = Project(tmp_path, agents={"cmd": cmd}, maxParallel=2, retries=0, backlog=backlog)
    assert p.cli("reconcile").returncode == 0  # a and b start, and stop on a rate limit
    assert wait_until(lambda: len(list((p.state / "runs").glob("*/1.exit.json"))) == 2, 20)
    first = p.cli("reconcile")  # judges them: the provider backs off (30 s, limit 1 of 2)
    assert first.returncode == 0, first.stderr
    judged = {r["task"]: r for r in rows(p, "attempts")}
    assert judged["a"]["outcome"] == judged["b"]["outcome"] == "rate_limited"
    assert judged["a"]["reason"] == "rate limited: exit 75"
    assert judged["b"]["reason"] == "rate limited: failing attempt 1"
    (stored,) = rows(p, "rate_limits")
    assert (stored["provider"], stored["lowered_to"], stored["strikes"]) == ("cmd", 1, 1)

    restarted = p.cli("reconcile")  # a new controller process: it reads the limiter back
    assert restarted.returncode == 0, restarted.stderr
    assert "c" not in {r["task"] for r in rows(p, "attempts")}  # nothing new started
    st = status(p)
    (view,) = st["rate_limits"]
    assert view["text"].startswith("rate limited: resuming at ")
    assert view["text"].endswith("(limit 1 of 2)") and (view["limit"], view["capacity"]) == (1, 2)
    reasons = {t["task"]: t["reason"] for t in st["tasks"]}
    assert all(reasons[t].startswith("rate limited: resuming at ") for t in "abc")
    assert "Rate limits: cmd: rate limited: resuming at " in p.cli("status").stdout

    assert stored["resume_at"] > time.time()  # (resuming is the planner's: unit tests)
    held = p.cli("diff").stdout
    assert ". wait   a  rate limited: resuming at " in held and "+ spawn" not in held
