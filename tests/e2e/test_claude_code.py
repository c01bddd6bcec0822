"""End-to-end with the real Claude Code CLI (`preset: claude-code`) against the scripted
Messages API server: the CLI really runs, really edits the worktrees through its tools and
really reports its cost; the controller runs as a user runs it (`reconcile --watch`).

Each script is chosen by a `[script:NAME]` marker in the task's prompt (the last known
marker wins, so the output of a failed verify, which the retry's prompt quotes, can choose
the retry's script). The CLI is the pinned version in .cache/claude-code (`claude_bin`);
without it these tests fail, they never skip.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.anthropic_server import AnthropicServer, Usage, bash, call, read, say, write
from tests.support.claude import agent, cost_of
from tests.support.project import Project, stop_process, wait_until
from tests.support.repo import git

pytestmark = pytest.mark.timeout(150)


def run_until(p: Project, done: Callable[[], bool], timeout: float = 90) -> str:
    """Run the controller until `done()`, then drain it; returns its output."""
    proc = p.watch()
    try:
        ok = wait_until(done, timeout=timeout, step=0.2)
    finally:
        out = stop_process(proc, timeout=60)
    assert ok, f"condition not reached; merged {p.merges()}\n{out}\n{p.cli('status').stdout}"
    return out


def status(p: Project) -> dict[str, Any]:
    done = p.cli("status", "-o", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def tasks_by_id(p: Project) -> dict[str, dict[str, Any]]:
    return {t["task"]: t for t in status(p)["tasks"]}


def attempts(p: Project) -> list[dict[str, Any]]:
    con = sqlite3.connect(p.state / "orchestrator.db")
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("SELECT * FROM attempts ORDER BY task, number")]
    con.close()
    return rows


def results_in_logs(p: Project) -> dict[str, float]:
    """task/attempt -> the CLI's own `total_cost_usd`, from the result lines in the logs."""
    found = {}
    for log in sorted((p.state / "logs").glob("*/*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"type":"result"' in line:
                found[f"{log.parent.name}/{log.stem}"] = json.loads(line)["total_cost_usd"]
    return found


def claude_project(tmp_path: Path, agents: dict[str, Any], **spec: Any) -> Project:
    spec.setdefault("retries", 0)
    spec.setdefault("timeout", "60s")
    return Project(tmp_path, agents=agents, **spec)


def test_eight_tasks_on_two_agents_all_merged_and_costs_add_up(
    tmp_path: Path, claude_bin: Path, anthropic: AnthropicServer
) -> None:
    backlog, expected, usages = [], {}, {}
    for i in range(8):
        who, path = ("dev", f"src/t{i}.py") if i % 2 == 0 else ("docs", f"docs/t{i}.md")
        usage = Usage(1000 + 100 * i, 40 + i, 200 * i, 300)
        content = f"# task {i} by {who}\nVALUE = {i * i}\n"
        anthropic.add_script(
            f"t{i}", [call(write(path, content), usage=usage), say("Written.", usage=usage)]
        )
        backlog.append(
            {"id": f"t{i}", "agent": who, "prompt": f"[script:t{i}] write {path}", "paths": [path]}
        )
        expected[path], usages[f"t{i}"] = content, usage
    agents = {
        "dev": agent(claude_bin, anthropic.url, owns=["src/**"]),
        "docs": agent(claude_bin, anthropic.url, owns=["docs/**"]),
    }
    p = claude_project(tmp_path, agents, maxParallel=4, backlog=backlog)
    run_until(p, lambda: len(set(p.merges())) == 8)

    for path, content in expected.items():  # the scripted contents, on the integration branch
        assert p.file_on_main(path) == content.rstrip("\n")
    own = results_in_logs(p)  # what the CLI itself reported, attempt by attempt
    assert sorted(own) == [f"t{i}/1" for i in range(8)]
    summary = json.loads(p.cli("activity-summary", "-o", "json").stdout)["cost"]
    assert summary["total_usd"] == pytest.approx(sum(own.values()), abs=1e-6)
    for task, usage in usages.items():  # and what the prices predict (2 requests each)
        predicted = cost_of(2, usage.as_dict())
        assert summary["by_task"][task] == pytest.approx(predicted, abs=1e-6)
        assert own[f"{task}/1"] == pytest.approx(predicted, abs=1e-9)
    dev = sum(own[f"t{i}/1"] for i in range(0, 8, 2))
    assert summary["by_agent"] == pytest.approx({"dev": dev, "docs": summary["total_usd"] - dev})
    assert summary["merged_tasks"] == 8
    assert summary["per_merged_task_usd"] == pytest.approx(summary["total_usd"] / 8, abs=1e-6)
    st = status(p)
    assert st["cost"]["total_usd"] == pytest.approx(summary["total_usd"], abs=1e-6)
    assert all(t["turns"] == 2 and t["cost_usd"] > 0 for t in st["tasks"])
    rows = attempts(p)
    assert [r["input_tokens"] for r in rows] == [2 * (1000 + 100 * i) for i in range(8)]
    text = p.cli("activity-summary").stdout
    assert "Cost:" in text and "per merged task" in text and "by agent: dev $" in text


def test_permission_denials_and_doing_nothing_fail_never_merge(
    tmp_path: Path, claude_bin: Path, anthropic: AnthropicServer
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    anthropic.add_script("write", [call(write("old.txt", "hi\n")), say("Done, file written.")])
    anthropic.add_script(
        "outside",
        [call(write("in.txt", "in\n"), write(f"{outside}/x.txt", "out\n")), say("All written.")],
    )
    anthropic.add_script("nothing", [say("Looks fine already; nothing to change.")])
    preset = agent(claude_bin, anthropic.url)
    readme_line = {  # the agent line the README used to show: plain `claude -p "{prompt}"`
        "command": [str(claude_bin), "-p", "{prompt}"],
        "owns": ["**"],
        "env": {  # its own folders, as the preset gets them (so nothing lands in ~ or /tmp)
            **preset["env"],
            "CLAUDE_CONFIG_DIR": str(tmp_path / "cc" / "config"),
            "CLAUDE_CODE_TMPDIR": str(tmp_path / "cc" / "tmp"),
            "XDG_RUNTIME_DIR": str(tmp_path / "cc" / "run"),
        },
    }
    backlog = [
        {"id": "old-line", "agent": "readme", "prompt": "[script:write] write old.txt"},
        {"id": "outside", "agent": "claude", "prompt": "[script:outside] write two files"},
        {"id": "nothing", "agent": "claude", "prompt": "[script:nothing] check the code"},
    ]
    p = claude_project(tmp_path, {"readme": readme_line, "claude": preset}, backlog=backlog)
    run_until(p, lambda: {t["phase"] for t in tasks_by_id(p).values()} == {"failed"})

    tasks = tasks_by_id(p)
    assert p.merges() == []  # never a false "done"
    assert "no changes" in tasks["old-line"]["reason"]  # the write was refused, exit 0
    assert f"permission denied: Write {outside}/x.txt" in tasks["outside"]["reason"]
    assert not (outside / "x.txt").exists()
    assert "no changes" in tasks["nothing"]["reason"]
    rows = {r["task"]: r for r in attempts(p)}
    assert rows["outside"]["outcome"] == "failed" and rows["outside"]["exit_code"] == 0
    assert rows["nothing"]["cost_usd"] > 0  # a failed attempt's cost still counts
    events = p.cli("events", "-o", "json").stdout
    assert '"kind": "no_changes"' in events


def test_a_fleet_budget_stops_new_spawns_and_raising_it_resumes(
    tmp_path: Path, claude_bin: Path, anthropic: AnthropicServer
) -> None:
    usage = Usage(2000, 100)
    for name in ("a", "b", "c"):
        anthropic.add_script(name, [call(write(f"{name}.txt", f"{name}\n")), say("Done.")])
    anthropic.usage = usage
    each = cost_of(2, usage.as_dict())
    backlog = [
        {"id": n, "agent": "dev", "prompt": f"[script:{n}] write", "paths": [f"{n}.txt"]}
        for n in ("a", "b", "c")
    ]
    agents = {"dev": agent(claude_bin, anthropic.url)}
    p = claude_project(tmp_path, agents, maxParallel=1, budget={"usd": 1.5 * each}, backlog=backlog)

    def held() -> bool:
        c = tasks_by_id(p)["c"]
        return set(p.merges()) == {"a", "b"} and c["reason"].startswith("budget:")

    run_until(p, held)
    reason = tasks_by_id(p)["c"]["reason"]
    assert reason == f"budget: ${2 * each:.4f} of ${1.5 * each:.4f} spent (fleet)"
    assert "c" not in {r["task"] for r in attempts(p)}  # never started
    text = p.cli("status").stdout
    assert "budget: $" in text and "budget (fleet): " in text
    p.write_spec(
        agents=agents, retries=0, timeout="60s", maxParallel=1, budget={"usd": 1.0}, backlog=backlog
    )
    run_until(p, lambda: "c" in p.merges())
    assert status(p)["cost"]["total_usd"] == pytest.approx(3 * each, abs=1e-6)


def test_worktree_setup_copy_and_ports(
    tmp_path: Path, claude_bin: Path, anthropic: AnthropicServer
) -> None:
    anthropic.log_bodies = True
    for name in ("a", "b"):
        command = f"echo $ORCHESTRATOR_PORT > {name}-port.txt && cat .env > {name}-env.txt"
        anthropic.add_script(name, [call(bash(command)), say("Recorded.")])
    anthropic.add_script("c", [call(write("c.txt", "c\n")), say("Done.")])
    dev = agent(
        claude_bin,
        anthropic.url,
        copy=[".env"],
        setup=["sh", "-c", "test -f .env && echo prepared {task} on {port}"],
        ports={"from": 18100, "to": 18101},
    )
    dev["args"] += ["--append-system-prompt", "Your service port is {port}."]
    broken = agent(claude_bin, anthropic.url, setup=["sh", "-c", "echo boom >&2; exit 3"])
    uncopied = agent(claude_bin, anthropic.url, copy=["missing.env"])
    backlog = [
        {"id": "a", "agent": "dev", "prompt": "[script:a] note the port", "paths": ["a-*"]},
        {"id": "b", "agent": "dev", "prompt": "[script:b] note the port", "paths": ["b-*"]},
        {"id": "c", "agent": "broken", "prompt": "[script:c] write c", "paths": ["c.txt"]},
        {"id": "d", "agent": "uncopied", "prompt": "[script:c] write c", "paths": ["d.txt"]},
    ]
    agents = {"dev": dev, "broken": broken, "uncopied": uncopied}
    p = claude_project(tmp_path, agents, maxParallel=4, backlog=backlog)
    (p.repo / ".gitignore").write_text(".env\n")
    git(p.repo, "add", ".gitignore")
    git(p.repo, "commit", "-q", "-m", "ignore .env")
    (p.repo / ".env").write_text("SECRET=42\n")  # git-ignored: no checkout would have it

    def settled() -> bool:
        tasks = tasks_by_id(p)
        return {"a", "b"} <= set(p.merges()) and tasks["c"]["phase"] == tasks["d"][
            "phase"
        ] == "failed"

    run_until(p, settled)
    ports = {p.file_on_main("a-port.txt"), p.file_on_main("b-port.txt")}
    assert ports == {"18100", "18101"}  # both ran at once, each with a port of its own
    assert p.file_on_main("a-env.txt") == "SECRET=42"  # copied, and seen by the agent
    assert p.file_on_main(".env") is None  # still ignored: never merged
    setup_log = (p.state / "logs" / "a" / "1.setup.log").read_text()
    assert setup_log.startswith("prepared a on 1810")
    systems = [json.dumps(e["body"].get("system")) for e in anthropic.stats()["log"] if "body" in e]
    assert any("Your service port is 18100." in s for s in systems)
    assert any("Your service port is 18101." in s for s in systems)
    c = tasks_by_id(p)["c"]
    assert c["reason"].startswith("retries exhausted after 1 attempt: setup failed: ")
    assert "exited with code 3" in c["reason"] and "1.setup.log" in c["reason"]
    assert "boom" in (p.state / "logs" / "c" / "1.setup.log").read_text()
    assert '"type":"system"' not in (p.state / "logs" / "c" / "1.log").read_text()  # no agent
    d = tasks_by_id(p)["d"]["reason"]
    assert "setup failed: copy missing.env does not exist in the main checkout" in d


def test_a_retry_after_a_failed_verify_gets_the_verify_output(
    tmp_path: Path, claude_bin: Path, anthropic: AnthropicServer
) -> None:
    check = (
        "import pathlib, sys\n"
        "out = pathlib.Path('out.txt')\n"
        "text = out.read_text().strip() if out.exists() else ''\n"
        "if text != 'good':\n"
        "    print(f'FAIL: out.txt says {text!r}, expected good [script:fixed]')\n"
        "    sys.exit(1)\n"
    )
    anthropic.add_script("first", [call(write("out.txt", "bad\n")), say("Done.")])
    fixed = [call(read("out.txt")), call(write("out.txt", "good\n")), say("Fixed it.")]
    anthropic.add_script("fixed", fixed)  # Claude Code writes a file only after reading it
    backlog = [{"id": "v", "agent": "dev", "prompt": "[script:first] write out.txt"}]
    p = claude_project(
        tmp_path,
        {"dev": agent(claude_bin, anthropic.url)},
        retries=2,
        backoff={"initial": "0.2s", "max": "0.5s"},
        verify=[sys.executable, "check.py"],
        backlog=backlog,
    )
    (p.repo / "check.py").write_text(check)
    git(p.repo, "add", "check.py")
    git(p.repo, "commit", "-q", "-m", "the check")

    run_until(p, lambda: "v" in p.merges())
    assert p.file_on_main("out.txt") == "good"
    rows = attempts(p)
    assert [(r["number"], r["outcome"]) for r in rows] == [(1, "verify_failed"), (2, "merged")]
    second = (p.state / "logs" / "v" / "2.log").read_text()
    prompt = second.split("end of the prompt")[0]
    assert "The previous attempt (1) did not land: verify failed" in prompt
    assert "FAIL: out.txt says 'bad', expected good [script:fixed]" in prompt
    assert (p.state / "runs" / "v" / "2.prompt").stat().st_mode & 0o777 == 0o600
    scripts = [e.get("script") for e in anthropic.stats()["log"] if e.get("kind") == "main"]
    assert scripts == ["first", "first", "fixed", "fixed", "fixed"]


def test_validate_names_a_missing_claude_binary(tmp_path: Path) -> None:
    p = Project(
        tmp_path,
        agents={"dev": {"preset": "claude-code", "program": "bin/no-such-claude"}},
        backlog=[{"id": "a", "agent": "dev", "prompt": "x"}],
    )
    done = p.cli("validate")
    assert done.returncode == 1
    assert "agents.dev.program: the claude-code binary is missing" in done.stderr
    assert "no-such-claude is not an executable file" in done.stderr
    p.write_spec(agents={"dev": {"preset": "claude-code"}}, backlog=[])
    on_path = subprocess.run(
        [sys.executable, "-m", "controller", "validate", "-f", str(p.spec_file)],
        capture_output=True,
        text=True,
        env={**p.env(), "PATH": "/usr/bin:/bin"},  # git, but no claude
    )
    assert on_path.returncode == 1
    assert (
        "agents.dev.preset: the claude-code binary is missing: 'claude' was not found on PATH"
        in (on_path.stderr)
    )
    assert "npm install -g @anthropic-ai/claude-code" in on_path.stderr


def test_status_and_dashboard_show_what_a_running_agent_does(
    tmp_path: Path, claude_bin: Path, anthropic: AnthropicServer
) -> None:
    slow = say("Done.", delay=6)  # the model "thinks" while the views look
    anthropic.add_script("slow", [call(write("src/x.py", "x = 1\n")), slow])
    backlog = [{"id": "s", "agent": "dev", "prompt": "[script:slow] write x"}]
    p = claude_project(tmp_path, {"dev": agent(claude_bin, anthropic.url)}, backlog=backlog)
    proc = p.watch()
    try:
        seen = wait_until(
            lambda: "turn 1: Write src/x.py" in tasks_by_id(p)["s"]["reason"], timeout=30, step=0.3
        )
        view = tasks_by_id(p)["s"]
        frame = subprocess.run(
            [sys.executable, "-m", "controller", "dashboard", "--once", "-f", str(p.spec_file)],
            capture_output=True,
            text=True,
            env={**p.env(), "COLUMNS": "120"},
            timeout=60,
        ).stdout
    finally:
        stop_process(proc, timeout=60)
    assert seen, tasks_by_id(p)["s"]
    assert view["phase"] == "running" and view["turns"] == 1
    assert view["last_action"] == "Write src/x.py"
    assert "turn 1: Write src/x.py" in frame, frame
    assert p.merges() == ["s"] and tasks_by_id(p)["s"]["turns"] == 2
