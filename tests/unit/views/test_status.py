"""`orchestrator status`: the model's figures, checked against values computed here.

The end-to-end test drives the real CLI and a real controller with fake agents (in a private
copy of the fake agent, so other test runs' clean-ups never kill ours), then recomputes each
figure from the store's rows with the arithmetic below, not by calling the product's code.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
from typer.testing import CliRunner

from controller.cli.app import app
from controller.core.plan import plan
from controller.loop.controller import spec_generation as loop_generation
from controller.model.observed import AttemptObs, Observed, ResourcesObs
from controller.model.spec import Spec
from controller.state.lock import ControllerLock
from controller.views.measure import with_recorded_times
from controller.views.snapshot import ControllerInfo, Snapshot, spec_generation
from controller.views.status import build_status, estimate_eta
from controller.views.text import status_lines, table
from tests.e2e import FAKE_AGENT, Project, stop_process, task, wait_until

# --- helpers shared by the view tests (no test_ prefix: importing them collects nothing) ----


def own_agent(tmp: Path) -> str:
    """A private copy of the fake agent: clean-ups elsewhere match the original's path."""
    dst = tmp / "agent" / "view_agent.py"
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FAKE_AGENT, dst)
    return str(dst)


def agents_spec(agent: str, *names: str) -> dict[str, Any]:
    return {name: {"command": [sys.executable, agent], "owns": ["**"]} for name in names}


def kill_own_agents(agent: str) -> None:
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if agent in (proc.info["cmdline"] or []):
                proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue


def kill_controller(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the controller (its own session); agents live on in theirs."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def store_rows(p: Project) -> list[dict[str, Any]]:
    con = sqlite3.connect(f"file:{p.state / 'orchestrator.db'}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM attempts ORDER BY task, number")]
    finally:
        con.close()


def rows_or_empty(p: Project) -> list[dict[str, Any]]:
    try:
        return store_rows(p)
    except sqlite3.Error:
        return []


def started(p: Project, task_id: str) -> bool:
    return any(r["task"] == task_id and r["started_at"] for r in rows_or_empty(p))


def recorded_spans(
    p: Project, rows: list[dict[str, Any]], now: float | None = None
) -> list[tuple[float, float]]:
    """(start, end) of each attempt from its store row; where the row lacks a time (the
    controller was killed between starting the agent and recording it), from the shim's
    start/exit record, the world's account. Unfinished attempts end at `now`."""
    spans = []
    for r in rows:
        start, end = r["started_at"], r["ended_at"]
        runs = p.state / "runs" / r["task"]
        if start is None and (runs / f"{r['number']}.start.json").exists():
            start = json.loads((runs / f"{r['number']}.start.json").read_text())["started_at"]
        if end is None and (runs / f"{r['number']}.exit.json").exists():
            end = json.loads((runs / f"{r['number']}.exit.json").read_text())["ended_at"]
        if start is not None and (end is not None or now is not None):
            spans.append((start, end if end is not None else now))
    return spans


def shim_start(p: Project, task_id: str, number: int = 1) -> float:
    record = p.state / "runs" / task_id / f"{number}.start.json"
    return float(json.loads(record.read_text())["started_at"])


def busy_figures(spans: list[tuple[float, float]], limit: int) -> dict[str, float]:
    """Speedup and friends by elementary segments: between consecutive endpoints, count the
    intervals covering the midpoint (independent of the product's sweep line)."""
    spans = [(s, e) for s, e in spans if e > s]
    points = sorted({t for span in spans for t in span})
    busy = overlap = 0.0
    for a, b in zip(points, points[1:], strict=False):
        mid = (a + b) / 2
        depth = sum(1 for s, e in spans if s <= mid < e)
        busy += (b - a) if depth >= 1 else 0.0
        overlap += (b - a) if depth >= 2 else 0.0
    work = sum(e - s for s, e in spans)
    speedup = work / busy if busy else 0.0
    return {
        "work_s": work,
        "busy_s": busy,
        "speedup": speedup,
        "efficiency": speedup / limit,
        "parallelization_rate": overlap / busy if busy else 0.0,
        "time_saved_s": work - busy,
    }


def invoke(p: Project, *args: str) -> tuple[int, str, str]:
    """Run a read-only command in this process (the real CLI code without the interpreter
    start-up; `Project.cli` runs it as a process). Returns (exit code, stdout, stderr)."""
    result = CliRunner().invoke(app, [*args, "-f", str(p.spec_file)])
    return result.exit_code, result.stdout, result.stderr


def cli_json(p: Project, *args: str) -> Any:
    result = p.cli(*args, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- pure -----------------------------------------------------------------------------------


def test_eta_prefers_progress_then_history_and_says_which() -> None:
    by_rate = estimate_eta(25.0, 20.0, [100.0, 200.0], "dev")
    assert by_rate.basis == "progress" and by_rate.seconds == pytest.approx(60.0)
    by_history = estimate_eta(None, 30.0, [40.0, 100.0, 70.0], "dev")
    assert by_history.basis == "history" and by_history.seconds == pytest.approx(40.0)
    assert "median" in by_history.detail and "3 earlier dev attempts" in by_history.detail
    overdue = estimate_eta(0.0, 500.0, [40.0], "dev")  # 0% says nothing about the rate
    assert overdue.basis == "history" and overdue.seconds == 0.0
    nothing = estimate_eta(None, 5.0, [], "dev")
    assert nothing.basis == "none" and nothing.seconds is None


def test_generation_matches_the_controllers(tmp_path: Path) -> None:
    spec = Spec.model_validate(
        {"apiVersion": "orchestrator/v1", "agents": {"a": {"command": ["x"]}}, "backlog": []}
    )
    assert spec_generation(spec) == loop_generation(spec)


def _spec(**extra: Any) -> Spec:
    data = {
        "apiVersion": "orchestrator/v1",
        "maxParallel": 2,
        "retries": 1,
        "agents": {"dev": {"command": ["x"], "owns": ["**"]}},
        "backlog": [
            {"id": "a", "agent": "dev", "paths": ["a/**"]},
            {"id": "b", "agent": "dev", "paths": ["b/**"]},
            {"id": "c", "agent": "dev", "paths": ["c/**"], "dependsOn": ["a"]},
            {"id": "d", "agent": "dev", "paths": ["d/**"]},
        ],
        **extra,
    }
    return Spec.model_validate(data)


def test_status_model_shows_the_planners_phase_and_reason() -> None:
    now = 10_000.0
    spec = _spec()
    attempts = {
        "a": (AttemptObs("a", 1, now - 50, pid=11, alive=True, agent="dev"),),
        "b": (
            AttemptObs("b", 1, now - 300, now - 200, 1, 12, outcome="failed", reason="exit 1"),
            AttemptObs("b", 2, now - 100, now - 40, 0, 13, outcome="succeeded", agent="dev"),
        ),
    }
    observed = Observed(
        integration_sha="f" * 40,
        attempts=attempts,
        resources=ResourcesObs(cpu_percent=10, memory_percent=20),
    )
    result = plan(spec, observed, now)
    snap = Snapshot(
        spec=spec,
        observed=observed,
        plan=result,
        controller=ControllerInfo(running=False),
        generation=spec_generation(spec),
        progress={"a": 50.0},
        now=now,
        has_store=True,
        attempts=with_recorded_times(attempts, {}),
    )
    model = build_status(snap)
    views = {v.task: v for v in model.tasks}
    assert {t: v.phase for t, v in views.items()} == result.phases
    reasons = {w.task: w.reason for w in result.waits}
    assert views["a"].reason == reasons["a"] and views["c"].reason == reasons["c"]
    assert views["b"].action == "merge" and views["b"].reason.startswith("merge: ")
    assert (views["a"].attempt, views["a"].max_attempts, views["a"].pid) == (1, 2, 11)
    assert views["a"].eta.basis == "progress" and views["a"].eta.seconds == pytest.approx(50.0)
    assert (views["b"].attempt, views["b"].elapsed_s) == (2, 60.0)
    assert views["d"].attempt == 0 and views["d"].eta.basis == "none"
    assert model.running == 1  # the live agent, not the plan's count with its spawns
    # speedup over the backlog: a [now-50, now] with b's [now-300, now-200], [now-100, now-40]
    expect = busy_figures([(now - 50, now), (now - 300, now - 200), (now - 100, now - 40)], 2)
    assert model.parallelism.speedup == pytest.approx(expect["speedup"])
    lines = status_lines(model)
    assert lines[0].startswith("Controller:") and "not running" in lines[0]
    assert any(line.split()[:2] == ["a", "running"] for line in lines)


def test_table_aligns_columns_and_leaves_the_last_ragged() -> None:
    lines = table(["A", "BB", "C"], [["xxx", "y", "long reason"], ["z", "wwww", ""]])
    assert lines == ["A     BB     C", "xxx   y      long reason", "z     wwww"]


# --- CLI ------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_status_without_state_creates_nothing_and_reports_errors(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("a"), task("b", dependsOn=["a"])])
    result = p.cli("status")
    assert result.returncode == 0, result.stderr
    assert "not running" in result.stdout and "blocked by a" in result.stdout
    code, out, _ = invoke(p, "status", "-o", "json")
    data = json.loads(out)
    assert code == 0 and data["controller"]["running"] is False and data["has_store"] is False
    assert [t["phase"] for t in data["tasks"]] == ["starting", "blocked"]
    assert not p.state.exists()  # read-only: no state dir, no database
    p.spec_file.write_text("apiVersion: orchestrator/v1\nmaxParallel: lots\n")
    code, _, err = invoke(p, "status")
    assert code == 1 and "maxParallel" in err


@pytest.mark.timeout(60)
def test_status_during_a_run_and_after_the_controller_dies(tmp_path: Path) -> None:
    agent = own_agent(tmp_path)
    p = Project(
        tmp_path,
        maxParallel=4,
        agents=agents_spec(agent, "slow", "other"),
        backlog=[
            task("p", "progress 40\nsleep 8", agent="slow"),
            task("h1", "sleep 0.2", agent="slow"),
            task("h2", "sleep 8", agent="slow", dependsOn=["h1"]),
            task("n", "sleep 8", agent="other"),
        ],
    )
    proc = p.watch()
    try:
        assert wait_until(lambda: started(p, "h2"), timeout=20), stop_process(proc)
        data = cli_json(p, "status")
        rows = {(r["task"], r["number"]): r for r in store_rows(p)}
        now = data["now"]
        ctl = data["controller"]
        assert ctl["running"] is True and ctl["pid"] == proc.pid
        assert ctl["spec_generation"] == data["spec"]["generation"]
        assert ctl["spec_generation_current"] is True
        tasks = {t["task"]: t for t in data["tasks"]}
        assert tasks["h1"]["phase"] == "merged"
        for name in ("p", "h2", "n"):
            t, row = tasks[name], rows[(name, 1)]
            assert t["phase"] == "running", t
            assert t["reason"].startswith(f"attempt 1 of 3 running pid {row['pid']}")
            assert (t["attempt"], t["max_attempts"], t["pid"]) == (1, 3, row["pid"])
            assert t["worktree"] == str(p.state.resolve() / "worktrees" / name)
            assert t["branch"] == f"orchestrator/{name}"
            # a running attempt's clock is the agent's, from the shim's start record
            assert t["started_at"] == shim_start(p, name)
            assert t["elapsed_s"] == pytest.approx(now - shim_start(p, name), abs=2e-3)
        # p writes 40%: the ETA follows its rate (elapsed x 60/40), though history exists
        elapsed = now - shim_start(p, "p")
        assert tasks["p"]["progress"] == 40.0 and tasks["p"]["eta_basis"] == "progress"
        assert tasks["p"]["eta_s"] == pytest.approx(elapsed * 60 / 40, abs=5e-3)
        # h2 reports nothing: the median of earlier `slow` attempts that finished (h1's)
        done = [
            r["ended_at"] - r["started_at"]
            for r in rows.values()
            if r["agent"] == "slow" and r["exit_code"] == 0 and r["ended_at"]
        ]
        left = statistics.median(done) - (now - shim_start(p, "h2"))
        assert tasks["h2"]["eta_basis"] == "history"
        assert tasks["h2"]["eta_s"] == pytest.approx(max(0.0, left), abs=5e-3)
        # n: no progress and no finished `other` attempt
        assert tasks["n"]["eta_basis"] == "none" and tasks["n"]["eta_s"] is None
        res = data["resources"]
        assert res["running"] == 3 and 0 <= res["cpu_percent"] <= 100
        assert res["admission"]["limit"] == 4 and res["admission"]["bound_by"] == "maxParallel"
        # the speedup so far, from the rows (running attempts count up to `now`)
        expect = busy_figures(recorded_spans(p, list(rows.values()), now), 4)
        for key in ("speedup", "efficiency", "parallelization_rate"):
            assert data["parallelism"][key] == pytest.approx(expect[key], abs=2e-3), key
        text = p.cli("status", "-o", "wide").stdout
        assert "(rate)" in text and "(median)" in text and "state/worktrees/p" in text
        # the phase is the planner's: `diff` says the same
        diff = json.loads(invoke(p, "diff", "-o", "json")[1])
        assert {k: diff["phases"][k] for k in tasks} == {k: v["phase"] for k, v in tasks.items()}

        kill_controller(proc)
        after = json.loads(invoke(p, "status", "-o", "json")[1])
        assert after["controller"]["running"] is False
        assert after["controller"]["pid"] == proc.pid  # the last one, for the record
        assert {t["task"]: t["phase"] for t in after["tasks"]}["p"] == "running"
        first = invoke(p, "status")[1].splitlines()[0]
        assert first.startswith("Controller:") and f"not running (last pid {proc.pid}" in first
    finally:
        stop_process(proc)
        kill_own_agents(agent)


def test_status_reports_a_held_lock_as_running(tmp_path: Path) -> None:
    """A lock holder is what `running` means; status itself never takes the lock."""
    p = Project(tmp_path, backlog=[task("a")])
    p.state.mkdir()
    with ControllerLock(p.state / "controller.lock"):
        data = json.loads(invoke(p, "status", "-o", "json")[1])
        assert data["controller"]["running"] is True
        assert data["controller"]["pid"] == os.getpid()
    assert sorted(x.name for x in p.state.iterdir()) == ["controller.lock"]
