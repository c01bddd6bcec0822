"""What the fleet cost, in the views: per task, per agent, in all, per merged task, budgets."""

from __future__ import annotations

import pytest

from controller.model.money import format_usd
from controller.model.observed import AgentReport, AttemptObs, Usage
from controller.views.costs import cost_line, costs_of
from controller.views.summary import build_summary
from controller.views.text import summary_lines
from tests.support.planning import make_spec, task

NOW = 100_000.0
SPEC = make_spec(
    [task("a"), task("b"), task("d", agent="docs")],
    {
        "dev": {"command": ["d"], "owns": ["src/**"], "budget": {"usd": 0.05}},
        "docs": {"command": ["o"], "owns": ["docs/**"]},
    },  # fmt: skip
    budget={"usd": 1.0},
)


def paid(task: str, n: int, usd: float | None, *, ended: float, outcome: str) -> AttemptObs:
    usage = Usage(1000, 100, 10, 20, usd) if usd is not None else None
    return AttemptObs(task, n, ended - 50, ended, 0, 1, outcome=outcome, agent=None,
                      report=AgentReport(usage=usage, turns=3))  # fmt: skip


ATTEMPTS = {
    "a": (
        paid("a", 1, 0.02, ended=NOW - 7200, outcome="failed"),
        paid("a", 2, 0.03, ended=NOW - 100, outcome="merged"),
    ),  # fmt: skip
    "b": (paid("b", 1, None, ended=NOW - 100, outcome="failed"),),
    "d": (paid("d", 1, 0.5, ended=NOW - 60, outcome="merged"),),
}


def test_costs_per_task_agent_total_and_merged_task() -> None:
    c = costs_of(SPEC, ATTEMPTS, merged=2)
    assert c.total_usd == pytest.approx(0.55)
    assert c.by_task == pytest.approx({"a": 0.05, "d": 0.5})
    assert c.by_agent == pytest.approx({"dev": 0.05, "docs": 0.5})
    assert c.per_merged_task_usd == pytest.approx(0.275)
    assert c.reported == 3 and c.tokens["input_tokens"] == 3000
    assert [(b["scope"], b["exhausted"]) for b in c.budgets] == [
        ("fleet", False),
        ("agent dev", True),
    ]
    line = cost_line(c)
    assert line.startswith("$0.5500 in all ($0.2750 per merged task); by agent: dev $0.0500")
    assert "budget (agent dev): $0.0500 of $0.0500, spent" in line
    assert cost_line(costs_of(make_spec(["a"]), {}, 0)) == "no agent has reported a cost yet"


def test_the_activity_summary_counts_the_attempts_in_its_window() -> None:
    phases = {"a": "merged", "b": "failed", "d": "merged"}
    s = build_summary(SPEC, ATTEMPTS, phases, hours=1, now=NOW)
    assert s.costs.total_usd == pytest.approx(0.53)  # a's first attempt is 2h old
    assert {t.task: t.cost_usd for t in s.completed} == pytest.approx(
        {"a": 0.03, "b": 0.0, "d": 0.5}
    )
    assert s.as_dict()["cost"]["per_merged_task_usd"] == pytest.approx(0.265)
    text = "\n".join(summary_lines(s))
    assert "Cost:" in text and "$0.5300 in all" in text and "COST" in text


def test_money_is_shown_with_enough_digits() -> None:
    assert [format_usd(x) for x in (0, 0.0289, 1, 1234.5)] == [
        "$0.00", "$0.0289", "$1.00", "$1,234.50",
    ]  # fmt: skip
