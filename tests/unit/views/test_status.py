"""`orchestrator status`: the model's figures, checked against values computed here.

The figures are recomputed with the tests' own interval arithmetic (`tests.support.views`),
not by calling the product's code. The command as a process, and during a run with a real
controller and fake agents, is in `tests/e2e/test_status.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from controller.core.plan import plan
from controller.core.specbacklog import expand
from controller.model.observed import AttemptObs, Observed, ResourcesObs
from controller.model.overrides import Overrides, settings
from controller.model.spec import Spec
from controller.model.spec import spec_generation as loop_generation
from controller.observe.running import lock_path
from controller.state.lock import ControllerLock
from controller.views.eta import estimate_eta
from controller.views.measure import with_recorded_times
from controller.views.snapshot import ControllerInfo, Snapshot, spec_generation
from controller.views.status import build_status
from controller.views.text import status_lines, table
from tests.support.project import Project, task
from tests.support.views import busy_figures, invoke

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
    assert views["d"].attempt == 1 and views["d"].eta.basis == "none"  # the one it starts
    assert model.running == 1  # the live agent, not the plan's count with its spawns
    # speedup over the backlog: a [now-50, now] with b's [now-300, now-200], [now-100, now-40]
    expect = busy_figures([(now - 50, now), (now - 300, now - 200), (now - 100, now - 40)], 2)
    assert model.parallelism.speedup == pytest.approx(expect["speedup"])
    lines = status_lines(model)
    assert lines[0].startswith("Controller:") and "not running" in lines[0]
    assert any(line.split()[:2] == ["a", "running"] for line in lines)


def test_status_shows_settings_disk_and_generated_and_requested_tasks() -> None:
    now = 10_000.0
    spec = _spec(
        maxParallel=4,
        resources={"disk": [{"below": 90, "parallel": 4}, {"parallel": 2}]},
        agents={
            "dev": {"command": ["dev"], "owns": ["a/**", "b/**", "c/**", "d/**"]},
            "architect": {"command": ["arch"], "owns": ["docs/**"]},
        },
        specBacklog={"agent": "architect", "path": "docs/SPEC-{id}.md", "forAgents": ["dev"]},
    )
    file_spec, overrides = spec, Overrides(max_parallel=3)
    observed = Observed(
        integration_sha="f" * 40,
        resources=ResourcesObs(disk_percent=93.4, disk_free_bytes=5 * 1024**3),
        requested={"d": now - 5},
        present_paths=frozenset({"docs/SPEC-b.md", "docs/SPEC-c.md", "docs/SPEC-d.md"}),
    )
    spec = expand(overrides.apply(spec), observed)
    result = plan(spec, observed, now)
    snap = Snapshot(
        spec=spec,
        observed=observed,
        plan=result,
        controller=ControllerInfo(running=True, pid=7, overrides=overrides),
        generation=spec_generation(file_spec),
        progress={},
        now=now,
        has_store=True,
        attempts={},
        settings=tuple(settings(file_spec, overrides)),
    )
    model = build_status(snap)
    lines = status_lines(model)
    (shown,) = [ln for ln in lines if ln.startswith("Settings:")]
    assert shown.endswith(
        "maxParallel 3 (command line; spec says 4), pollInterval 30s, retries 1, "
        "specBacklog 3 ahead"
    )
    (resources,) = [ln for ln in lines if ln.startswith("Resources:")]
    assert "disk 93% used (allows 2), 5.0 GB free; admission limit 2 (disk 93% used)" in resources
    rows = {ln.split()[0]: ln for ln in lines if ln[:2] in ("a-", "a ", "d ")}
    assert "[spec of a]" in rows["a-spec"] and "[spec of" not in rows["a"]
    assert "requested at" in rows["d"]
    data = model.as_dict()
    assert data["settings"]["maxParallel"] == {"value": 3, "source": "command line", "spec": 4}
    assert data["resources"]["disk_percent"] == 93.4
    tasks = {t["task"]: t for t in data["tasks"]}
    assert tasks["a-spec"]["generated_for"] == "a" and tasks["d"]["requested_at"] == now - 5


def test_table_aligns_columns_and_leaves_the_last_ragged() -> None:
    lines = table(["A", "BB", "C"], [["xxx", "y", "long reason"], ["z", "wwww", ""]])
    assert lines == ["A     BB     C", "xxx   y      long reason", "z     wwww"]


# --- CLI ------------------------------------------------------------------------------------


def test_status_reports_a_held_lock_as_running(tmp_path: Path) -> None:
    """The holder of the repository's lock (in its git folder) is what `running` means, when
    it runs on this spec's state folder; status itself never takes the lock."""
    p = Project(tmp_path, backlog=[task("a")])
    p.state.mkdir()
    lock = lock_path(p.repo)
    assert lock.parent.parent == p.repo / ".git"
    with ControllerLock(lock, {"spec": "/x/spec.yaml", "state": str(p.state)}):
        data = json.loads(invoke(p, "status", "-o", "json")[1])
        assert data["controller"]["running"] is True
        assert data["controller"]["pid"] == os.getpid()
    assert list(p.state.iterdir()) == []
    other = tmp_path / "elsewhere"
    with ControllerLock(lock, {"spec": "/x/conf/spec.yaml", "state": str(other)}):
        code, text, _ = invoke(p, "status")
        data = json.loads(invoke(p, "status", "-o", "json")[1])
    assert code == 0 and data["controller"]["running"] is False
    assert data["controller"]["other"]["spec_file"] == "/x/conf/spec.yaml"
    assert "another controller" in text and "/x/conf/spec.yaml" in text


def test_status_and_the_dashboard_show_a_rate_limited_provider() -> None:
    from datetime import datetime

    from controller.model.ratelimit import LimiterState
    from controller.views.dashboard import Frame, header_lines

    now = 20_000.0
    spec = _spec(
        agents={"dev": {"preset": "claude-code", "owns": ["**"]}},
        resources={"cpu": [{"parallel": 8}], "memory": [{"parallel": 8}]},
    )
    limiter = LimiterState("claude-code", limit=1, resume_at=now + 30, changed_at=now - 5)
    attempts = {
        "a": (AttemptObs("a", 1, now - 90, now - 6, 1, 5, outcome="rate_limited", agent="dev"),)
    }
    observed = Observed(
        integration_sha="f" * 40, attempts=attempts, rate_limits={"claude-code": limiter}
    )
    snap = Snapshot(
        spec=spec,
        observed=observed,
        plan=plan(spec, observed, now, tz=datetime.now().astimezone().tzinfo),
        controller=ControllerInfo(running=False),
        generation=spec_generation(spec),
        progress={},
        now=now,
        has_store=True,
        attempts=with_recorded_times(attempts, {}),
    )
    model = build_status(snap)
    resume = datetime.fromtimestamp(now + 30).strftime("%H:%M:%S")
    text = f"rate limited: resuming at {resume} (limit 1 of 2)"
    (view,) = model.as_dict()["rate_limits"]
    assert view == {
        "provider": "claude-code",
        "limit": 1,
        "capacity": 2,
        "resume_at": now + 30,
        "next_step_at": now + 30 + 60,
        "throttled": True,
        "text": text,
    }
    views = {v.task: v for v in model.tasks}
    assert views["a"].reason == views["b"].reason == text
    assert (views["a"].rate_limited, views["a"].max_attempts) == (1, 3)  # no retry used
    assert f"Rate limits: claude-code: {text}" in status_lines(model)
    frame = Frame(model, (), (now - 60, now), (), (), (), (), (), 1.0)
    assert f"claude-code: {text}" in str(header_lines(frame)[1])
