"""Budgets: once what the attempts a budget covers have spent reaches it, nothing new starts.

A budget (`budget: {usd: N}`) covers the whole fleet (top level), one agent's tasks, or one
task, and counts every attempt recorded in the state folder (`Observed.spent`). A spent
budget holds back new attempts with a visible wait reason; with `hard: true` it also stops
running attempts (their work is snapshotted). Raising the figure in the spec lets work
resume on the next pass. Pure functions of (spec, task, spent).
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.model.agent import Budget
from controller.model.money import format_usd
from controller.model.observed import Spent
from controller.model.spec import Spec, Task


@dataclass(frozen=True)
class BudgetUse:
    """One budget and what the attempts it covers have spent."""

    scope: str  # "fleet", "agent dev", "task t1"
    budget: Budget
    spent: float

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.budget.usd

    def reason(self) -> str:
        hard = ", hard" if self.budget.hard else ""
        return (
            f"budget: {format_usd(self.spent)} of {format_usd(self.budget.usd)} spent "
            f"({self.scope}{hard})"
        )


def budgets_of(spec: Spec, task: Task, spent: Spent) -> list[BudgetUse]:
    """The budgets that cover `task`, widest first."""
    out = []
    if spec.budget is not None:
        out.append(BudgetUse("fleet", spec.budget, spent.total))
    agent = spec.agents.get(task.agent)
    if agent is not None and agent.budget is not None:
        used = spent.by_agent.get(task.agent, 0.0)
        out.append(BudgetUse(f"agent {task.agent}", agent.budget, used))
    if task.budget is not None:
        out.append(BudgetUse(f"task {task.id}", task.budget, spent.by_task.get(task.id, 0.0)))
    return out


def start_blocked(spec: Spec, task: Task, spent: Spent) -> str | None:
    """Why no new attempt of `task` may start (a spent budget), or None."""
    for use in budgets_of(spec, task, spent):
        if use.exhausted:
            return use.reason()
    return None


def must_stop(spec: Spec, task: Task, spent: Spent) -> str | None:
    """Why a running attempt of `task` must stop now (a spent hard budget), or None."""
    for use in budgets_of(spec, task, spent):
        if use.exhausted and use.budget.hard:
            return use.reason()
    return None


def all_budgets(spec: Spec, spent: Spent) -> list[BudgetUse]:
    """Every budget in the spec with what it covers has spent (for the views)."""
    out = []
    if spec.budget is not None:
        out.append(BudgetUse("fleet", spec.budget, spent.total))
    for name, agent in spec.agents.items():
        if agent.budget is not None:
            out.append(BudgetUse(f"agent {name}", agent.budget, spent.by_agent.get(name, 0.0)))
    for task in spec.backlog:
        if task.budget is not None:
            used = spent.by_task.get(task.id, 0.0)
            out.append(BudgetUse(f"task {task.id}", task.budget, used))
    return out
