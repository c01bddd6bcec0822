"""End-to-end with the real Codex CLI (`preset: codex`) against the scripted Responses API
server: `codex exec --json` really runs the scripted commands in the worktrees (in its
`workspace-write` sandbox), reports its tokens, and a 429 storm is handled by the fleet like
Claude Code's. The CLI is the pinned version in .cache/codex (`codex_bin`): without it these
tests fail, they never skip."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.anthropic_server import Usage, call, say
from tests.support.codex import agent
from tests.support.openai_server import OpenAIServer, shell
from tests.support.project import Project, stop_process, wait_until

pytestmark = pytest.mark.timeout(90)


def attempts(p: Project) -> list[dict[str, Any]]:
    con = sqlite3.connect(p.state / "orchestrator.db")
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("SELECT * FROM attempts ORDER BY task, number")]
    con.close()
    return rows


def run_until(p: Project, done: Callable[[], bool], timeout: float = 60) -> None:
    """Run the controller until `done()`, then drain it."""
    proc = p.watch()
    try:
        ok = wait_until(lambda: proc.poll() is not None or done(), timeout, step=0.2)
        ok = ok and proc.poll() is None
    finally:
        out = stop_process(proc, timeout=60)
    assert ok, f"merged {p.merges()}\n{out}\n{p.cli('status').stdout}"


def tasks_by_id(p: Project) -> dict[str, dict[str, Any]]:
    done = p.cli("status", "-o", "json")
    assert done.returncode == 0, done.stderr
    return {t["task"]: t for t in json.loads(done.stdout)["tasks"]}


def test_codex_tasks_merge_with_their_tokens_and_doing_nothing_fails(
    tmp_path: Path, codex_bin: Path, openai: OpenAIServer
) -> None:
    for i in range(2):
        usage = Usage(1000 + i, 50, 0, 200)
        turns = [call(shell(f"mkdir -p src && printf 'v = {i}\\n' > src/t{i}.py"), usage=usage)]
        openai.add_script(f"t{i}", [*turns, say("Written.", usage=usage)])
    outside = tmp_path / "outside"
    outside.mkdir()
    openai.add_script("outside", [call(shell(f"echo out > {outside}/x.txt")), say("Written.")])
    openai.add_script("nothing", [say("Looks fine already; nothing to change.")])
    backlog = [
        {
            "id": f"t{i}",
            "agent": "dev",
            "prompt": f"[script:t{i}] write it",
            "paths": [f"src/t{i}.py"],
        }
        for i in range(2)
    ] + [
        {
            "id": "outside",
            "agent": "dev",
            "prompt": "[script:outside] write outside",
            "paths": ["o"],
        },
        {
            "id": "nothing",
            "agent": "dev",
            "prompt": "[script:nothing] check the code",
            "paths": ["n"],
        },
    ]
    dev = agent(codex_bin, openai.url)
    p = Project(tmp_path, agents={"dev": dev}, maxParallel=4, retries=0, backlog=backlog)
    phases = {"t0": "merged", "t1": "merged", "outside": "failed", "nothing": "failed"}
    run_until(p, lambda: {t: r["phase"] for t, r in tasks_by_id(p).items()} == phases)

    assert sorted(p.merges()) == ["t0", "t1"]  # never a false "done"
    assert [p.file_on_main(f"src/t{i}.py") for i in range(2)] == ["v = 0", "v = 1"]
    tasks = tasks_by_id(p)
    assert "no changes" in tasks["nothing"]["reason"]
    assert "no changes" in tasks["outside"]["reason"]  # its sandbox refused the write
    assert not (outside / "x.txt").exists()
    rows = {r["task"]: r for r in attempts(p)}
    assert [rows[t]["outcome"] for t in phases] == ["merged", "merged", "failed", "failed"]
    for i in range(2):  # two answers each, as the server counted them
        r = rows[f"t{i}"]
        assert (r["input_tokens"], r["cache_read_tokens"]) == (2 * (1000 + i), 400)
        assert (r["output_tokens"], r["cost_usd"], r["turns"]) == (100, None, 2)
    assert rows["nothing"]["input_tokens"] > 0 and rows["nothing"]["cost_usd"] is None
    log = (p.state / "logs" / "t0" / "1.log").read_text()
    assert '"type":"turn.completed"' in log and "[script:t0] write it" in log
    argv = json.loads((p.state / "runs" / "t0" / "1.start.json").read_text())
    assert "[script:t0]" not in json.dumps(argv)  # the prompt went in on stdin


def test_a_429_storm_on_codex_agents_uses_no_retry(
    tmp_path: Path, codex_bin: Path, openai: OpenAIServer
) -> None:
    for i in range(3):
        openai.add_script(f"t{i}", [call(shell(f"echo {i} > t{i}.txt")), say("Done.")])
    openai.fail_next(4)  # Codex retries once here (below): attempts end on a 429
    dev = agent(codex_bin, openai.url, rateLimit={"backoff": "1s", "quiet": "1s"})
    dev["args"] += ["-c", "model_providers.scripted.stream_max_retries=1"]
    backlog = [
        {"id": f"t{i}", "agent": "dev", "prompt": f"[script:t{i}] go", "paths": [f"t{i}.txt"]}
        for i in range(3)
    ]
    p = Project(tmp_path, agents={"dev": dev}, maxParallel=3, retries=0, backlog=backlog)
    run_until(p, lambda: len(set(p.merges())) == 3)

    rows = attempts(p)
    assert {r["outcome"] for r in rows} <= {"merged", "rate_limited"}
    limited = [r for r in rows if r["outcome"] == "rate_limited"]
    assert limited and all(
        r["reason"] == "rate limited: API error 429 after 1 retry" for r in limited
    )
    assert openai.stats()["rate_limited"] == 4
