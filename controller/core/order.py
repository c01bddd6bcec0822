"""Which task the planner considers first: the order in which waiting tasks get free slots.

Backlog order is the priority (users read their ROADMAP's order as theirs). Tasks that hold
nothing come in the same order; only the order among tasks competing for a slot matters.
Tasks `orchestrator spawn-parallel` asked for go first, oldest request first, ahead of that
order (`requested_first`): they still pass every start rule, they only get asked first.
"""

from __future__ import annotations

from controller.core.lifecycle import TaskState
from controller.model.observed import Observed
from controller.model.spec import Spec, Task


def start_order(spec: Spec, observed: Observed, states: dict[str, TaskState]) -> list[Task]:
    """The spec's tasks in the order the planner decides them: requested ones first, then
    backlog order."""
    return requested_first(list(spec.backlog), observed.requested)


def requested_first(tasks: list[Task], requested: dict[str, float]) -> list[Task]:
    """`tasks` with the requested ones moved to the front, oldest request first (a stable
    partition: the rest keep their order)."""
    if not requested:
        return tasks
    rank = {task_id: i for i, task_id in enumerate(requested)}
    first = sorted((t for t in tasks if t.id in rank), key=lambda t: rank[t.id])
    return first + [t for t in tasks if t.id not in rank]
