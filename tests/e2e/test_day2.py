"""The second day, as a user lives it, through the real CLI and a real controller: a task
fails until its retries are used up, `logs` shows why, `retry` revives it and it merges,
`clean` removes the merged branches (and nothing else), `reset` archives before starting
over; one controller per repository; the spec found from a subfolder; `status` while the
spec is broken; what `reconcile`, Ctrl-C and a restart say.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT
from tests.support.project import Project, kill_fake_agents, stop_process, task, wait_until
from tests.support.repo import git


class Lines:
    """The output of a running process, collected line by line by a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        stream = proc.stdout
        self.thread = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self.thread.start()

    def has(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    @property
    def text(self) -> str:
        return "".join(self.lines)


def phases(p: Project) -> dict[str, str]:
    done = p.cli("status", "-o", "json")
    assert done.returncode in (0, 3), done.stderr
    return {t["task"]: t["phase"] for t in json.loads(done.stdout)["tasks"]}


def cli(
    p: Project, *args: str, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """The CLI as a process, without the `-f` that `Project.cli` appends."""
    return subprocess.run(
        [sys.executable, "-m", "controller", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd or p.tmp,
        env={**p.env(), **env},
    )


def refs(p: Project, prefix: str) -> dict[str, str]:
    out = git(p.repo, "for-each-ref", "--format=%(refname) %(objectname)", prefix)
    return dict(line.split(" ") for line in out.splitlines())


@pytest.mark.timeout(150)
def test_the_day2_path_logs_retry_clean_reset(tmp_path: Path) -> None:
    p = Project(
        tmp_path,
        retries=1,
        backlog=[
            task("bad", "fail-until 3 1"),  # attempts 1 and 2 fail, the 3rd would work
            task("good"),
            task("rogue", "write elsewhere.txt: out of scope"),  # rejected: kept unmerged
        ],
    )
    proc = p.watch()
    out = Lines(proc)
    try:
        assert wait_until(
            lambda: phases(p) == {"bad": "failed", "good": "merged", "rogue": "rejected"},
            timeout=40,
        ), out.text
        status = p.cli("status").stdout
        assert "retries exhausted after 2 attempts: exit 1" in status
        assert "`orchestrator retry bad`" in status and "`orchestrator logs bad`" in status

        # logs: the latest attempt's output, another attempt's, unknown tasks
        logs = cli(p, "logs", "bad", "--file", str(p.spec_file))
        assert logs.returncode == 0 and "failing attempt 2" in logs.stdout, logs.stderr
        assert "log of bad attempt 2 (failed: exit 1)" in logs.stderr
        first = cli(p, "logs", "bad", "--attempt", "1", "--file", str(p.spec_file))
        assert "failing attempt 1" in first.stdout and "failing attempt 2" not in first.stdout
        typo = cli(p, "logs", "bda", "--file", str(p.spec_file))
        assert typo.returncode == 1 and "did you mean 'bad'?" in typo.stderr
        events = p.cli("events", "-t", "bda")
        assert events.returncode == 1 and "did you mean 'bad'?" in events.stderr

        # retry --fresh: a fresh budget, from the tip, the old branch archived; it merges
        old_tip = git(p.repo, "rev-parse", "orchestrator/bad")
        retried = p.cli("retry", "bad", "--fresh")
        assert retried.returncode == 0, retried.stderr
        assert "bad: retry requested after attempt 2" in retried.stdout
        assert wait_until(lambda: "bad" in p.merges(), timeout=30), out.text
        auto = next(ln for ln in out.lines if "~ retry  bad" in ln)
        assert "attempt 2 of 2: exit 1, backoff over" in auto  # every retry line says why
        assert wait_until(lambda: out.has("retried by hand"), timeout=5)
        line = next(ln for ln in out.lines if "retried by hand" in ln)
        assert (
            line.startswith("~ retry  bad")
            and "attempt 3 of 4 (counted from attempt 3): retried by hand" in line
        )  # says why
        assert "exit 1" in line
        assert old_tip in refs(p, "refs/orchestrator/archive/bad").values()
        # the controller's commit of the agent's work reads as work; the merge is the user's
        assert git(p.repo, "log", "-1", "--format=%s", "main^2") == "bad: changes from attempt 3"
        who = git(p.repo, "log", "-1", "--format=%an <%ae> / %cn <%ce>", "main")
        assert who == "Test User <test@example.com> / orchestrator <orchestrator@localhost>"
        status = json.loads(p.cli("status", "-o", "json").stdout)
        assert status["unattributed_commits"]["commits"] == []  # still the controller's
    finally:
        stop_process(proc)
        kill_fake_agents(p.tmp)

    # clean: the merged branches go, the unmerged one and every archive stay
    archives = refs(p, "refs/orchestrator/archive")
    assert archives
    dry = p.cli("clean", "--merged", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would remove branch orchestrator/good" in dry.stdout
    assert "would remove branch orchestrator/bad" in dry.stdout
    assert "kept branch orchestrator/rogue" in dry.stdout
    assert "Would remove 2 branches and 0 archive refs (dry run" in dry.stdout
    assert set(refs(p, "refs/heads/orchestrator")) == {
        f"refs/heads/orchestrator/{t}" for t in ("bad", "good", "rogue")
    }
    done = p.cli("clean", "--merged")
    assert done.returncode == 0 and "Removed 2 of 2 branches" in done.stdout, done.stdout
    assert set(refs(p, "refs/heads/orchestrator")) == {"refs/heads/orchestrator/rogue"}
    assert refs(p, "refs/orchestrator/archive") == archives

    # reset: archives first (branch tip and uncommitted work), then starts over from main
    rogue_tip = git(p.repo, "rev-parse", "orchestrator/rogue")
    reset = p.cli("reset", "rogue")
    assert reset.returncode == 0, reset.stderr
    assert "rogue: reset: attempts 1-1 forgotten; archived first: " in reset.stdout
    assert "refs/orchestrator/archive/rogue/1" in reset.stdout
    assert rogue_tip in refs(p, "refs/orchestrator/archive/rogue").values()
    plan = json.loads(p.cli("diff", "-o", "json").stdout)
    spawn = next(a for a in plan["actions"] if a["task"] == "rogue")
    assert spawn["kind"] == "spawn" and spawn["attempt"] == 2 and spawn["fresh"] is True
    assert "starting over" in spawn["reason"]
    refused = p.cli("reset", "good")
    assert refused.returncode == 1 and "merged already" in refused.stderr


@pytest.mark.timeout(60)
def test_a_second_controller_on_the_same_repository_is_refused(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("slow", "sleep 20")])
    conf = p.repo / "conf" / "spec.yaml"  # another spec, another state folder, same repo
    conf.parent.mkdir()
    spec = {**p.base_spec(), "repo": "..", "paused": True}
    conf.write_text(json.dumps(spec))
    first = cli(p, "reconcile", "-f", str(conf))
    assert first.returncode == 0, first.stderr
    assert (p.repo / "conf" / "state" / "orchestrator.db").is_file()
    status = git(p.repo, "status", "--porcelain", "--untracked-files=all")
    assert status == "?? conf/spec.yaml"  # the state folder beside it is hidden from git
    proc = p.watch()
    try:
        assert wait_until(lambda: phases(p).get("slow") == "running", timeout=20)
        second = cli(p, "reconcile", "-f", str(conf))
        assert second.returncode == 1
        assert f"another controller (PID {proc.pid}, spec {p.spec_file.resolve()})" in second.stderr
        assert "one controller per repository" in second.stderr
        assert "spawn" not in second.stdout
        status = cli(p, "status", "-f", str(conf))
        assert status.returncode == 0
        assert f"another controller (pid {proc.pid}) runs on this repository" in status.stdout
        ordered = cli(p, "retry", "slow", "-f", str(conf))
        assert ordered.returncode == 1
    finally:
        stop_process(proc)
        kill_fake_agents(p.tmp)


@pytest.mark.timeout(60)
def test_the_spec_is_found_from_a_subfolder(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("a")])
    inside = p.repo / "specs" / "orchestrator.yaml"
    inside.parent.mkdir()
    inside.write_text(json.dumps({**p.base_spec(), "repo": "..", "backlog": [task("a")]}))
    deep = p.repo / "src" / "deep"
    deep.mkdir(parents=True)
    found = cli(p, "status", cwd=deep)
    assert found.returncode == 0, found.stderr
    assert re.search(r"Spec:\s+\.\./\.\./specs/orchestrator\.yaml", found.stdout), found.stdout
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in p.env().items() if k != "ORCHESTRATOR_SPEC"}
    lost = subprocess.run(
        [sys.executable, "-m", "controller", "validate"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=outside,
        env=env,
    )
    assert lost.returncode == 1
    assert f"looked for specs/orchestrator.yaml in {outside}" in lost.stderr
    assert "-f FILE" in lost.stderr and "$ORCHESTRATOR_SPEC is not set" in lost.stderr
    by_env = cli(p, "validate", cwd=outside, ORCHESTRATOR_SPEC=str(inside))
    assert by_env.returncode == 0 and "valid" in by_env.stdout
    given = cli(p, "validate", "-f", str(p.spec_file), cwd=deep, ORCHESTRATOR_SPEC="/nope")
    assert given.returncode == 0 and str(p.spec_file) in given.stdout  # -f wins


@pytest.mark.timeout(90)
def test_status_with_a_broken_spec_shows_the_last_valid_one(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("slow", "sleep 30"), task("later", dependsOn=["slow"])])
    proc = p.watch()
    out = Lines(proc)
    try:
        assert wait_until(lambda: phases(p).get("slow") == "running", timeout=20)
        good = p.spec_file.read_text()
        p.spec_file.write_text(good.replace('"maxParallel": 3', '"maxParallel": "lots"'))
        assert wait_until(lambda: out.has("spec   invalid"), timeout=10), out.text
        status = p.cli("status")
        assert status.returncode == 3, status.stderr
        lines = status.stdout.splitlines()
        assert lines[0].startswith("! ") and "is invalid (1 problem)" in lines[0]
        assert "maxParallel" in lines[1]
        assert any(ln.startswith("slow ") and "running" in ln for ln in lines)
        assert any(ln.startswith("later ") and "blocked by slow" in ln for ln in lines)
        assert "nothing was done" not in status.stdout + status.stderr
        data = json.loads(p.cli("status", "-o", "json").stdout)
        assert data["spec"]["valid"] is False and data["spec"]["problems"][0]["line"] > 0
        p.spec_file.write_text(good)
        assert wait_until(lambda: out.has("spec valid again (generation"), timeout=10), out.text
        assert p.cli("status").returncode == 0
    finally:
        stop_process(proc)
        kill_fake_agents(p.tmp)
    # no controller ever recorded a spec for this file: nothing to show, still exit 3
    other = tmp_path / "other"
    q = Project(other, backlog=[task("x")])
    q.spec_file.write_text("apiVersion: orchestrator/v1\nagents: 3\n")
    broken = q.cli("status")
    assert broken.returncode == 3 and "nothing to show" in broken.stderr


@pytest.mark.timeout(60)
def test_reconcile_exits_4_when_an_action_failed(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("dup")])
    git(p.repo, "branch", "orchestrator/dup", "main")
    git(p.repo, "worktree", "add", "-q", str(tmp_path / "by-hand"), "orchestrator/dup")
    done = p.cli("reconcile")
    assert done.returncode == 4, done.stdout + done.stderr
    assert "1 action failed: spawn dup: could not start" in done.stderr
    data = json.loads(p.cli("reconcile", "-o", "json").stdout or "{}")
    assert data.get("failed") and data["failed"][0].startswith(("spawn dup", "retry dup"))


@pytest.mark.timeout(90)
def test_ctrl_c_says_what_keeps_running_and_a_restart_what_it_adopted(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("long", "sleep 40")])
    proc = p.watch()
    out = Lines(proc)
    try:
        assert wait_until(lambda: phases(p).get("long") == "running", timeout=20)
        proc.send_signal(signal.SIGINT)
        assert wait_until(lambda: out.has("Ctrl-C again leaves now"), timeout=10), out.text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
        out.thread.join(timeout=5)
        assert "1 agent keeps running: long (attempt 1, pid" in out.text, out.text
        assert "`orchestrator start` adopts it" in out.text
        again = p.watch()
        restarted = Lines(again)
        try:
            assert wait_until(lambda: restarted.has("adopted 1 running agent: long"), timeout=20)
        finally:
            stop_process(again, timeout=5)
    finally:
        stop_process(proc)
        kill_fake_agents(p.tmp)


def _write_project(root: Path) -> Path:
    repo = root / "project"
    (repo / "src" / "calc").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "docs").mkdir()
    (repo / "pyproject.toml").write_text('[project]\nname = "calc"\nversion = "0.1"\n')
    (repo / "src" / "calc" / "__init__.py").write_text("def add(a, b):\n    return a + b\n")
    (repo / "tests" / "test_add.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    )
    (repo / "docs" / "index.md").write_text("# calc\n")
    git(repo.parent, "init", "-q", "-b", "main", str(repo))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a small python project")
    return repo


@pytest.mark.timeout(90)
def test_init_then_validate_on_a_fresh_python_project(tmp_path: Path) -> None:
    repo = _write_project(tmp_path)
    bin_dir = tmp_path / "bin"  # Claude Code stands in: the preset needs the binary present
    bin_dir.mkdir()
    (bin_dir / "claude").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "claude").chmod(0o755)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "controller", *args]
        return subprocess.run(argv, capture_output=True, text=True, cwd=repo, env=env, timeout=60)

    done = run("init")
    assert done.returncode == 0, done.stdout + done.stderr
    spec_file = repo / "specs" / "orchestrator.yaml"
    text = spec_file.read_text()
    assert text.startswith("# yaml-language-server: $schema=./schema.json")
    assert json.loads((repo / "specs" / "schema.json").read_text())["title"]
    assert "integrationBranch: main" in text and "preset: claude-code" in text
    assert '"src/**", "tests/**", "pyproject.toml"' in text and '"docs/**"' in text
    assert "valid (2 agents, 0 tasks" in done.stdout
    assert run("validate").returncode == 0
    assert run("init").returncode == 1  # it does not overwrite
    # the verify command it wrote works: run it as the gate would, on a checkout
    spec: dict[str, Any] = {}
    for line in text.splitlines():
        if line.startswith("verify:"):
            spec["verify"] = json.loads(line.split(":", 1)[1].split("#")[0])
    assert spec["verify"][-3:] == ["-m", "pytest", "-q"]
    gate = subprocess.run(
        spec["verify"],
        cwd=repo,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": "src", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert gate.returncode == 0, gate.stdout + gate.stderr
    # without Claude Code, init says how to get it and validate's problem is the exit code
    env["PATH"] = os.environ["PATH"]
    if "claude" not in {p.name for d in env["PATH"].split(":") for p in _ls(d)}:
        again = run("init", "--force")
        assert again.returncode == 1 and "Claude Code is not on PATH" in again.stderr


def _ls(folder: str) -> list[Path]:
    try:
        return list(Path(folder).iterdir())
    except OSError:
        return []
