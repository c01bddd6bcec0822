"""`orchestrator activity-summary` of a real run whose controller is killed and restarted, and
its usage errors as a process.

The controller is SIGKILLed midway (agents keep running, one finishes while no controller
runs) and restarted; the measured figures must still equal what the recorded attempt
intervals give, computed with the tests' own interval arithmetic (`tests.support.views`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

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
    store_rows,
)


def _events(p: Project, *args: str) -> list[dict[str, Any]]:
    code, out, err = invoke(p, "events", "-o", "json", *args)
    assert code == 0, err
    return json.loads(out)


@pytest.mark.timeout(90)
def test_summary_of_a_run_with_a_controller_restart(tmp_path: Path) -> None:
    agent = own_agent(tmp_path)
    p = Project(
        tmp_path,
        maxParallel=3,
        agents=agents_spec(agent, "dev"),
        backlog=[
            task("a", "sleep 0.8"),
            task("b", "sleep 2.5"),
            task("c", "fail-until 2 3\nsleep 0.6"),
            task("d", "sleep 0.6", dependsOn=["a"]),
            task("e", "sleep 1.2", dependsOn=["c"]),
        ],
    )
    proc = p.watch()
    try:
        # kill the controller while b still runs, after a has merged
        assert wait_until(lambda: "a" in p.merges(), timeout=20), stop_process(proc)
        kill_controller(proc)
        down = cli_json(p, "status")
        assert down["controller"]["running"] is False
        # b finishes while no controller runs; its exit is recorded after the restart
        assert wait_until(lambda: (tmp_path / "state/runs/b/1.exit.json").exists(), timeout=10)
        proc = p.watch()
        assert wait_until(lambda: set("abcde") <= set(p.merges()), timeout=40), stop_process(proc)
        stop_process(proc)
    finally:
        stop_process(proc)
        kill_own_agents(agent)

    rows = store_rows(p)
    starts = [e for e in _events(p, "--kind", "controller_start")]
    assert len(starts) == 2  # it really restarted
    spans = recorded_spans(p, rows)
    expect = busy_figures(spans, 3)
    assert expect["parallelization_rate"] > 0  # agents did overlap

    data = cli_json(p, "activity-summary", "--hours", "1")
    par = data["parallelism"]
    for key in ("work_s", "busy_s", "speedup", "efficiency", "parallelization_rate"):
        assert par[key] == pytest.approx(expect[key], abs=2e-3), key
    assert par["time_saved_s"] == pytest.approx(expect["time_saved_s"], abs=2e-3)
    assert par["limit"] == 3
    counts = data["counts"]
    assert (counts["completed"], counts["active"], counts["queued"]) == (5, 0, 0)
    assert counts["attempts"] == len(spans)  # 6, or 7 if the kill lost a spawn
    lost = sum(1 for r in rows if r["outcome"] == "lost")  # a spawn the kill interrupted
    assert data["failures_by_reason"].pop("failed: exit 3") == 1
    assert data["retries_by_reason"].pop("failed: exit 3") == 1
    assert sum(data["failures_by_reason"].values()) == lost
    per_task = {t["task"]: t for t in data["tasks"]["completed"]}
    for name in "abcde":
        mine = recorded_spans(p, [r for r in rows if r["task"] == name])
        assert per_task[name]["attempts"] == len(mine)
        assert per_task[name]["outcome"] == "merged"
        dur = sum(e - s for s, e in mine)
        assert per_task[name]["duration_s"] == pytest.approx(dur, abs=2e-3)

    # status measures the same backlog the same way (nothing runs any more)
    status = cli_json(p, "status")
    for key in ("speedup", "efficiency", "parallelization_rate"):
        assert status["parallelism"][key] == pytest.approx(expect[key], abs=2e-3), key

    # text, markdown and the SVG timeline
    svg = tmp_path / "timeline.svg"
    code, text, err = invoke(p, "activity-summary", "--hours", "1", "--svg", str(svg))
    assert code == 0, err
    assert f"{expect['speedup']:.2f}x measured" in text
    assert "Failures by reason:" in text and "failed: exit 3" in text
    body = svg.read_text()
    assert body.startswith("<svg") and body.rstrip().endswith("</svg>")
    assert len(re.findall(r"<rect [^>]*><title>", body)) == len(spans)  # a bar per attempt
    assert "c attempt 1 (dev): failed" in body
    code, md, _ = invoke(p, "activity-summary", "--hours", "1", "-o", "markdown")
    assert code == 0 and md.startswith("## Activity summary")
    assert f"| Speedup | {expect['speedup']:.2f}x measured" in md
    assert "| 1 | failed: exit 3 |" in md


def test_bad_hours_is_a_clear_error(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("a")])
    for bad in ("0", "-2", "nan"):
        code, _, err = invoke(p, "activity-summary", "--hours", bad)
        assert code == 1 and "error: --hours must be a positive number" in err, bad
    result = p.cli("activity-summary", "--hours", "abc")  # a usage error, as a process
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "hours" in result.stderr.lower()
    code, out, _ = invoke(p, "activity-summary", "-o", "json")
    assert code == 0 and json.loads(out)["counts"]["attempts"] == 0
    assert not p.state.exists()


@pytest.mark.timeout(90)
def test_a_command_agent_reports_its_cost_through_the_usage_file(tmp_path: Path) -> None:
    """Any agent, not only a preset, can report tokens and cost ($ORCHESTRATOR_USAGE_FILE)."""
    usage = '{"input_tokens": 1000, "output_tokens": 50, "cost_usd": 0.25, "turns": 3}'
    p = Project(
        tmp_path,
        budget={"usd": 0.5},
        maxParallel=1,
        backlog=[
            task("a", f"usage {usage}"),
            task("b", f"usage {usage}"),
            task("c"),
            task("d"),
        ],
    )
    proc = p.watch()
    try:
        held = wait_until(
            lambda: {"a", "b"} <= set(p.merges()) and "budget:" in _reason(p, "c"), timeout=40
        )
    finally:
        stop_process(proc)
    assert held, p.cli("status").stdout
    summary = json.loads(p.cli("activity-summary", "-o", "json").stdout)["cost"]
    assert summary["total_usd"] == 0.5 and summary["by_task"] == {"a": 0.25, "b": 0.25}
    assert summary["tokens"]["input_tokens"] == 2000 and summary["per_merged_task_usd"] == 0.25
    assert _reason(p, "c") == "budget: $0.5000 of $0.5000 spent (fleet)"
    assert _reason(p, "d") == "budget: $0.5000 of $0.5000 spent (fleet)"


def _reason(p: Project, task_id: str) -> str:
    done = p.cli("status", "-o", "json")
    tasks = {t["task"]: t for t in json.loads(done.stdout)["tasks"]}
    return str(tasks[task_id]["reason"])
