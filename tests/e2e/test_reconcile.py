"""End-to-end: the real CLI converging real git repositories with fake agent processes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from tests.support.project import (
    Project,
    fake_agents_running,
    kill_fake_agents,
    stop_process,
    task,
    wait_until,
)
from tests.support.repo import git

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(autouse=True)
def _no_leftover_agents(tmp_path: Path):
    yield
    kill_fake_agents(tmp_path)


def attempts(p: Project) -> list[dict]:
    con = sqlite3.connect(p.state / "orchestrator.db")
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("SELECT * FROM attempts ORDER BY task, number")]
    con.close()
    return rows


def converge(p: Project, expected: set[str], timeout: float = 40) -> str:
    proc = p.watch()
    try:
        ok = wait_until(lambda: expected <= set(p.merges()), timeout=timeout)
    finally:
        out = stop_process(proc)
    assert ok, f"did not converge; merged {p.merges()}\n{out}"
    return out


def test_happy_path_dependency_chain_waits_for_merges(tmp_path: Path) -> None:
    p = Project(
        tmp_path,
        backlog=[
            task("a", "write a.txt: A\nsleep 0.3"),
            task("b", "write b.txt: B", dependsOn=["a"]),
            task("c", "write c.txt: C", dependsOn=["b"]),
            task("d", "write d.txt: D"),
        ],
    )
    diff = p.cli("diff")
    assert diff.returncode == 2, diff.stderr
    assert "+ spawn  a" in diff.stdout and "blocked by a (not merged)" in diff.stdout
    converge(p, {"a", "b", "c", "d"})
    assert sorted(p.merges()) == ["a", "b", "c", "d"]
    assert p.merges().index("a") < p.merges().index("b") < p.merges().index("c")
    assert p.file_on_main("c.txt") == "C"
    starts = {t: ts for t, _, _, ts in p.agent_starts()}
    merged_at = {}  # b may only start after a's merge commit exists
    for line in git(p.repo, "log", "--first-parent", "--format=%ct %s", "main").splitlines():
        ts, subject = line.split(" ", 1)
        merged_at[subject.split(":")[0].replace("Merge task ", "")] = int(ts)
    assert starts["b"] >= merged_at["a"] - 1
    assert p.worktrees() == []  # merged worktrees pruned
    assert set(git(p.repo, "branch", "--format=%(refname:short)").split()) >= {
        "orchestrator/a",
        "orchestrator/b",
    }  # branches are kept
    after = p.cli("diff")
    assert after.returncode == 0, after.stdout
    assert "Everything is converged" in after.stdout


def test_crash_then_successful_retry(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("flaky", "fail-until 2 3\nwrite flaky.txt: ok")])
    converge(p, {"flaky"})
    rows = attempts(p)
    assert [(r["number"], r["outcome"]) for r in rows] == [(1, "failed"), (2, "merged")]
    assert rows[0]["exit_code"] == 3 and rows[0]["reason"] == "exit 3"
    log = (p.state / "logs" / "flaky" / "1.log").read_text()
    assert "failing attempt 1" in log


def test_retries_exhausted_stay_visible(tmp_path: Path) -> None:
    p = Project(tmp_path, retries=1, backlog=[task("doomed", "exit 7")])
    proc = p.watch()
    try:
        assert wait_until(lambda: len([r for r in attempts_or_empty(p) if r["outcome"]]) == 2)
        time.sleep(0.5)
    finally:
        stop_process(proc)
    assert [r["outcome"] for r in attempts(p)] == ["failed", "failed"]
    diff = p.cli("diff")
    assert diff.returncode == 0
    assert "retries exhausted after 2 attempts: exit 7" in diff.stdout
    assert p.merges() == []


def attempts_or_empty(p: Project) -> list[dict]:
    try:
        return attempts(p)
    except sqlite3.Error:
        return []


def test_hung_agent_killed_at_timeout(tmp_path: Path) -> None:
    p = Project(
        tmp_path,
        retries=0,
        timeout="1s",
        backlog=[task("stuck", "hang")],
    )
    proc = p.watch()
    try:
        assert wait_until(lambda: any(r["outcome"] for r in attempts_or_empty(p)), timeout=20)
        assert wait_until(lambda: "stuck" not in fake_agents_running(p.tmp), timeout=10)
    finally:
        stop_process(proc)
    row = attempts(p)[0]
    assert row["outcome"] == "timeout"
    assert "timed out" in row["reason"]


def test_merge_conflict_gets_a_fresh_attempt_on_the_new_tip(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("edit", "sleep 1.0\nwrite shared.txt: from the agent")])
    p.write_spec(
        backlog=[
            {**task("edit", "sleep 1.0\nwrite shared.txt: from the agent"), "paths": ["shared.txt"]}
        ]
    )
    proc = p.watch()
    try:
        assert wait_until(lambda: "edit" in fake_agents_running(p.tmp), timeout=15)
        # a human commits a conflicting version of the same file on main meanwhile
        (p.repo / "shared.txt").write_text("from a human\n")
        git(p.repo, "add", "shared.txt")
        git(p.repo, "commit", "-q", "-m", "human edit")
        assert wait_until(lambda: "edit" in p.merges(), timeout=30)
    finally:
        stop_process(proc)
    rows = attempts(p)
    assert [r["outcome"] for r in rows] == ["conflict", "merged"]
    assert json.loads(rows[0]["conflicts"]) == ["shared.txt"]
    assert p.file_on_main("shared.txt") == "from the agent"
    # the first attempt's work was archived, not lost
    archived = git(p.repo, "for-each-ref", "--format=%(refname)", "refs/orchestrator/archive/edit/")
    assert archived.strip()
    log = (p.state / "logs" / "edit" / "2.log").read_text()
    assert "edit attempt 2 done" in log


def test_scope_violation_is_not_merged_and_branch_is_kept(tmp_path: Path) -> None:
    p = Project(
        tmp_path,
        backlog=[task("sneaky", "write sneaky.txt: ok\nwrite secrets/other.txt: nope")],
    )
    proc = p.watch()
    try:
        assert wait_until(lambda: any(r["outcome"] for r in attempts_or_empty(p)), timeout=20)
        time.sleep(0.3)
    finally:
        stop_process(proc)
    row = attempts(p)[0]
    assert row["outcome"] == "rejected"
    assert "secrets/other.txt" in row["reason"]
    assert p.merges() == []
    assert git(p.repo, "rev-parse", "--verify", "orchestrator/sneaky")
    diff = p.cli("diff")
    assert "not merged: wrote outside its scope: secrets/other.txt" in diff.stdout


def test_verify_failure_is_a_failed_attempt_with_its_log(tmp_path: Path) -> None:
    verify = [
        sys.executable,
        "-c",
        "import pathlib,sys; sys.exit(pathlib.Path('bad.txt').exists())",
    ]
    p = Project(
        tmp_path,
        retries=0,
        verify=verify,
        backlog=[task("good"), {**task("bad"), "prompt": "write bad.txt: broken"}],
    )
    proc = p.watch()
    try:
        assert wait_until(lambda: "good" in p.merges(), timeout=20)
        assert wait_until(
            lambda: any(r["outcome"] == "verify_failed" for r in attempts_or_empty(p)), timeout=20
        )
    finally:
        stop_process(proc)
    assert "bad" not in p.merges()
    assert p.file_on_main("bad.txt") is None
    assert (p.state / "logs" / "bad" / "1.verify.log").exists()
    # main only ever moved to commits that passed verify: every first-parent merge is good
    for sha in git(p.repo, "rev-list", "--first-parent", "main").split():
        assert "bad.txt" not in git(p.repo, "ls-tree", "--name-only", sha).split()


def test_spec_edit_during_watch_adds_and_removes_tasks(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("keep"), task("drop", "hang")])
    proc = p.watch()
    try:
        assert wait_until(lambda: "drop" in fake_agents_running(p.tmp), timeout=15)
        assert wait_until(lambda: "keep" in p.merges(), timeout=15)
        p.write_spec(backlog=[task("keep"), task("new")])
        assert wait_until(lambda: "new" in p.merges(), timeout=20)
        assert wait_until(lambda: "drop" not in fake_agents_running(p.tmp), timeout=10)
        assert wait_until(lambda: p.worktrees() == [], timeout=10)
    finally:
        out = stop_process(proc)
    assert "reloaded" in out
    assert git(p.repo, "rev-parse", "--verify", "orchestrator/drop")  # branch never deleted
    rows = {r["task"]: r for r in attempts(p)}
    assert rows["drop"]["outcome"] == "stopped"


def test_invalid_spec_edit_keeps_the_last_valid_spec(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("first", "sleep 0.5")])
    proc = p.watch()
    try:
        assert wait_until(lambda: "first" in fake_agents_running(p.tmp), timeout=15)
        p.spec_file.write_text("apiVersion: orchestrator/v1\nagents: [\n")
        time.sleep(0.5)
        assert wait_until(lambda: "first" in p.merges(), timeout=15)
    finally:
        out = stop_process(proc)
    assert "invalid, last valid spec stays in force" in out
    assert "Traceback" not in out


def test_second_controller_is_refused(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("slow", "sleep 3")])
    proc = p.watch()
    try:
        assert wait_until(
            lambda: (p.state / "controller.lock").exists() and "slow" in fake_agents_running(p.tmp)
        )
        second = p.cli("reconcile")
        assert second.returncode == 1
        assert f"PID {proc.pid}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        stop_process(proc)


def test_stop_command_drains_gracefully(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("a", "sleep 4"), task("b", dependsOn=["a"])])
    proc = p.watch()
    try:
        assert wait_until(lambda: "a" in fake_agents_running(p.tmp), timeout=15)
        result = p.cli("stop", "--wait", "20")
        assert result.returncode == 0, result.stderr
        assert "controller stopped" in result.stdout
        proc.wait(timeout=20)
    finally:
        stop_process(proc)
    assert p.merges() == ["a"]  # a finished and merged; b was not started while draining
    assert not any(t == "b" for t, *_ in p.agent_starts())


def test_controller_sigkilled_midway_converges_after_restart(tmp_path: Path) -> None:
    tasks = [
        task(f"t{i}", f"sleep 0.{3 + i % 5}\nwrite t{i}.txt: {i}\ncommit t{i}") for i in range(8)
    ]
    tasks[5]["dependsOn"] = ["t1"]
    tasks[6]["dependsOn"] = ["t5"]
    p = Project(tmp_path, maxParallel=3, backlog=tasks)
    seen_duplicates: list[dict] = []
    for _ in range(3):
        proc = p.watch()
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:
            running = fake_agents_running(p.tmp)
            if any(len(pids) > 1 for pids in running.values()):
                seen_duplicates.append(running)
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)  # the controller only: agents are in their own sessions
        proc.wait()
    converge(p, {f"t{i}" for i in range(8)})
    merges = p.merges()
    assert sorted(merges) == sorted(f"t{i}" for i in range(8)), merges  # each exactly once
    assert seen_duplicates == []
    starts = p.agent_starts()
    assert len({(t, n) for t, n, *_ in starts}) == len(starts)  # no attempt started twice
    # and no two runs of one task overlapped (the agents' own start and end times)
    ends = {pid: ts for _, _, pid, ts in p.agent_ends()}
    for t in {t for t, *_ in starts}:
        runs = sorted((ts, ends.get(pid, ts)) for tt, _, pid, ts in starts if tt == t)
        assert all(b[0] >= a[1] for a, b in zip(runs, runs[1:], strict=False)), (t, runs)
    assert p.worktrees() == []
    # every commit an agent made is reachable from main
    for t, *_ in starts:
        assert git(p.repo, "log", "--format=%s", "--grep", f"^{t}$", "main").strip() == t


def test_stop_force_kills_agents_and_keeps_their_work(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("long", "write long.txt: half done\nhang")])
    proc = p.watch()
    try:
        assert wait_until(lambda: "long" in fake_agents_running(p.tmp), timeout=15)
        assert wait_until(lambda: (p.state / "worktrees" / "long" / "long.txt").exists())
        result = p.cli("stop", "--force", "--wait", "20")
        assert result.returncode == 0, result.stderr
        proc.wait(timeout=20)
    finally:
        stop_process(proc)
    assert "long" not in fake_agents_running(p.tmp)
    assert attempts(p)[0]["outcome"] == "stopped"
    refs = git(p.repo, "for-each-ref", "--format=%(refname)", "refs/orchestrator/archive/long/")
    assert refs, "uncommitted work was not snapshotted"
    assert git(p.repo, "show", f"{refs.split()[0]}:long.txt") == "half done"


def test_stop_force_without_a_controller_stops_adopted_agents(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("orphaned", "hang")])
    first = p.cli("reconcile")  # one pass: spawns, then the controller exits; the agent lives on
    assert first.returncode == 0, first.stderr
    assert wait_until(lambda: "orphaned" in fake_agents_running(p.tmp), timeout=15)
    result = p.cli("stop", "--force")
    assert result.returncode == 0, result.stderr
    assert wait_until(lambda: "orphaned" not in fake_agents_running(p.tmp), timeout=10)
    assert attempts(p)[0]["outcome"] == "stopped"


def test_prune_false_keeps_merged_worktrees(tmp_path: Path) -> None:
    p = Project(tmp_path, prune=False, backlog=[task("kept")])
    converge(p, {"kept"})
    assert [Path(w).name for w in p.worktrees()] == ["kept"]


def test_dirty_integration_checkout_blocks_merges_until_clean(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("waits")])
    (p.repo / "README.md").write_text("someone is editing this\n")
    proc = p.watch()
    try:
        assert wait_until(
            lambda: "uncommitted changes" in p.cli("diff").stdout and "waits" not in p.merges(),
            timeout=20,
        )
        git(p.repo, "commit", "-q", "-am", "human commit")
        assert wait_until(lambda: "waits" in p.merges(), timeout=20)
    finally:
        stop_process(proc)
    assert (p.repo / "waits.txt").read_text() == "waits\n"  # the checkout was fast-forwarded
