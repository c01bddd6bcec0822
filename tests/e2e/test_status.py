"""`orchestrator status` as a process: before any run, during a real run, and after its
controller is SIGKILLed.

The run drives the real CLI and a real controller with fake agents (in a private copy of the fake
agent, so other test runs' clean-ups never kill ours), then recomputes each figure from the
store's rows with the arithmetic in `tests.support.views`, not by calling the product's code.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from tests.support.project import Project, stop_process, task, wait_until
from tests.support.views import (
    agents_spec,
    busy_figures,
    cli_json,
    invoke,
    kill_controller,
    kill_own_agents,
    own_agent,
    recorded_spans,
    shim_start,
    started,
    store_rows,
)


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
    assert code == 3 and "maxParallel" in err and "nothing to show" in err  # spec invalid
