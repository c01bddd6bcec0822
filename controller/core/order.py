"""Which task the planner considers first: the order in which waiting tasks get free slots.

Backlog order is the priority (users read their ROADMAP's order as theirs). Tasks that hold
nothing come in the same order; only the order among tasks competing for a slot matters.
"""

from __future__ import annotations

from controller.core.lifecycle import TaskState
from controller.model.observed import Observed
from controller.model.spec import Spec, Task


def start_order(spec: Spec, observed: Observed, states: dict[str, TaskState]) -> list[Task]:
    """The spec's tasks in the order the planner decides them (today: backlog order)."""
    return list(spec.backlog)
