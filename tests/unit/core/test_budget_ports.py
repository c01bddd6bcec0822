"""Budgets and ports in the planner: pure table tests (hand-built spec and observed)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from controller.core.budget import all_budgets, start_blocked
from controller.model.observed import AgentReport, Usage
from tests.support.planning import (
    action_of,
    exited,
    failed,
    make_spec,
    observed,
    run,
    running,
    started,
    starting,
    task,
    wait_of,
)

AGENTS: dict[str, dict[str, Any]] = {
    "dev": {"command": ["dev"], "owns": ["src/**"]},
    "docs": {"command": ["docs"], "owns": ["docs/**"]},
}


def paid(usd: float) -> AgentReport:
    return AgentReport(usage=Usage(1000, 100, cost_usd=usd))


def tasks() -> list[dict[str, Any]]:
    return [
        task("a", paths=["src/a/**"]),
        task("b", paths=["src/b/**"]),
        task("d", agent="docs", paths=["docs/d/**"]),
    ]


# --- budgets ------------------------------------------------------------------------------


def test_a_spent_fleet_budget_holds_every_new_start_with_its_reason() -> None:
    spec = make_spec(tasks(), AGENTS, budget={"usd": 1.0})
    obs = observed([failed("a", 1, agent="dev", report=paid(0.6)),
                    failed("d", 1, agent="docs", report=paid(0.5))])  # fmt: skip
    p = run(spec, obs)
    assert started(p) == []
    for t in ("a", "b", "d"):
        w = wait_of(p, t)
        assert w is not None and w.reason == "budget: $1.10 of $1.00 spent (fleet)"
    assert wait_of(p, "b").phase == "queued" and wait_of(p, "a").phase == "retrying"


def test_raising_the_budget_resumes() -> None:
    obs = observed([failed("a", 1, agent="dev", report=paid(0.6))])
    assert started(run(make_spec(tasks(), AGENTS, budget={"usd": 0.5}), obs)) == []
    assert started(run(make_spec(tasks(), AGENTS, budget={"usd": 5}), obs)) == ["a", "b", "d"]


def test_agent_and_task_budgets_hold_only_what_they_cover() -> None:
    agents = {**AGENTS, "dev": {**AGENTS["dev"], "budget": {"usd": 0.05}}}
    backlog = [*tasks(), task("e", agent="docs", paths=["docs/e/**"], budget={"usd": 0.01})]
    obs = observed([exited("e", 1, code=1, agent="docs", report=paid(0.02)),
                    failed("a", 1, agent="dev", report=paid(0.05))])  # fmt: skip
    p = run(make_spec(backlog, agents), obs)
    assert wait_of(p, "b").reason == "budget: $0.0500 of $0.0500 spent (agent dev)"
    assert action_of(p, "d") is not None  # docs has no budget of its own
    assert "budget: $0.0200 of $0.0100 spent (task e)" in wait_of(p, "e").reason


def test_a_hard_budget_stops_running_attempts_and_keeps_their_work() -> None:
    hard = make_spec(tasks(), AGENTS, budget={"usd": 1.0, "hard": True})
    obs = observed([failed("a", 1, agent="dev", report=paid(1.2)),
                    running("b", 1), running("d", 1)])  # fmt: skip
    p = run(hard, obs)
    stop = action_of(p, "b")
    assert stop is not None and stop.kind == "stop" and stop.outcome == "stopped"
    assert stop.snapshot and stop.reason == "budget: $1.20 of $1.00 spent (fleet, hard)"
    soft = run(make_spec(tasks(), AGENTS, budget={"usd": 1.0}), obs)
    assert action_of(soft, "b") is None and wait_of(soft, "b").phase == "running"


def test_spent_counts_every_recorded_attempt() -> None:
    spec = make_spec(tasks(), AGENTS, budget={"usd": 10})
    obs = observed([failed("a", 1, agent="dev", report=paid(1)),
                    failed("a", 2, agent="dev", report=paid(2)),
                    failed("gone", 1, agent="dev", report=paid(4))])  # fmt: skip
    assert obs.spent.total == 7 and obs.spent.by_agent == {"dev": 7}
    assert obs.spent.by_task == {"a": 3, "gone": 4}
    assert start_blocked(spec, spec.backlog[0], obs.spent) is None
    uses = all_budgets(spec, obs.spent)
    assert [(u.scope, u.spent, u.exhausted) for u in uses] == [("fleet", 7, False)]


# --- ports --------------------------------------------------------------------------------

PORTED = {**AGENTS, "dev": {**AGENTS["dev"], "ports": {"from": 8100, "to": 8102}}}


def test_attempts_started_together_get_ports_of_their_own() -> None:
    backlog = [task(t, paths=[f"src/{t}/**"]) for t in ("a", "b", "c")]
    p = run(make_spec(backlog, PORTED), observed())
    assert [action_of(p, t).port for t in ("a", "b", "c")] == [8100, 8101, 8102]
    assert "port 8100" in action_of(p, "a").reason


def test_ports_held_by_live_attempts_are_skipped_and_freed_after_exit() -> None:
    backlog = [task(t, paths=[f"src/{t}/**"]) for t in ("a", "b", "c", "e")]
    held = [running("a", 1, port=8100), replace(starting("b", 1), port=8102)]
    obs = observed([*held, exited("c", 1, port=8101)])
    p = run(make_spec(backlog, PORTED, maxParallel=8), obs)
    assert action_of(p, "e").port == 8101  # c has exited: its port is free again


def test_no_free_port_is_a_visible_wait() -> None:
    backlog = [task(t, paths=[f"src/{t}/**"]) for t in ("a", "b", "c", "e")]
    obs = observed([running("a", 1, port=8100), running("b", 1, port=8101),
                    running("c", 1, port=8102)])  # fmt: skip
    p = run(make_spec(backlog, PORTED, maxParallel=8), obs)
    assert wait_of(p, "e").reason == "no free port in 8100-8102 (all 3 in use)"
    assert action_of(run(make_spec(backlog, AGENTS, maxParallel=8), obs), "e") is not None


def test_a_running_agent_shows_its_turns_and_last_action() -> None:
    report = AgentReport(turns=3, last_action="Edit src/a/x.py")
    p = run(make_spec(tasks(), AGENTS), observed([running("a", 1, report=report)]))
    assert wait_of(p, "a").reason.endswith("; turn 3: Edit src/a/x.py")
