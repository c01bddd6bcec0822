"""Which task the planner considers first: the order in which waiting tasks get free slots.

`order: backlog` (the default): backlog order is the priority, as users read their ROADMAP's
order as theirs. `order: critical-path`: the task heading the longest chain of work still to
do comes first -- its own duration plus the longest chain of not-yet-merged tasks that
depend on it, transitively -- so the dependency graph's long chains start early; backlog
order breaks ties. Durations: the task's `estimate`, else its agent's median measured
duration (`Observed.agent_durations`), else 1 s. Only the order among tasks competing for a
slot (or a scope) matters; tasks that hold nothing are decided in the same order.
Tasks `orchestrator spawn-parallel` asked for go first, oldest request first, ahead of
either order (`requested_first`): they still pass every start rule, they only get asked first.
"""

from __future__ import annotations

from collections.abc import Iterable

from controller.core.lifecycle import TaskState
from controller.model.observed import Observed
from controller.model.spec import Spec, Task

DEFAULT_ESTIMATE_S = 1.0


def start_order(spec: Spec, observed: Observed, states: dict[str, TaskState]) -> list[Task]:
    """The spec's tasks in the order the planner decides them (see the module docstring)."""
    if spec.order != "critical-path":
        return requested_first(list(spec.backlog), observed.requested)
    done = {t for t, st in states.items() if st.stage == "merged"} | set(spec.completed)
    level = remaining_path(spec.backlog, durations(spec.backlog, observed), done)
    position = {t.id: i for i, t in enumerate(spec.backlog)}
    ordered = sorted(spec.backlog, key=lambda t: (-level.get(t.id, 0.0), position[t.id]))
    return requested_first(ordered, observed.requested)


def durations(tasks: Iterable[Task], observed: Observed) -> dict[str, float]:
    """Each task's expected duration in seconds (see the module docstring)."""
    out = {}
    for task in tasks:
        if task.estimate is not None:
            out[task.id] = task.estimate
        else:
            out[task.id] = observed.agent_durations.get(task.agent, DEFAULT_ESTIMATE_S)
    return out


def remaining_path(
    tasks: Iterable[Task], duration: dict[str, float], done: set[str]
) -> dict[str, float]:
    """Per task not done: its duration plus the longest chain of not-done tasks that depend
    on it (its "bottom level"). A task in a dependency cycle (which the spec checks refuse)
    counts its own duration only."""
    tasks = [t for t in tasks if t.id not in done]
    ids = {t.id for t in tasks}
    dependants: dict[str, list[str]] = {t.id: [] for t in tasks}
    waiting = {t.id: 0 for t in tasks}  # dependants not yet levelled
    for task in tasks:
        for dep in dict.fromkeys(task.depends_on):
            if dep in ids:
                dependants[dep].append(task.id)
                waiting[dep] += 1
    parents = {t.id: [d for d in dict.fromkeys(t.depends_on) if d in ids] for t in tasks}
    level: dict[str, float] = {}
    ready = [t for t, n in waiting.items() if n == 0]
    while ready:
        node = ready.pop()
        tail = max((level[c] for c in dependants[node]), default=0.0)
        level[node] = duration.get(node, DEFAULT_ESTIMATE_S) + tail
        for parent in parents[node]:
            waiting[parent] -= 1
            if waiting[parent] == 0:
                ready.append(parent)
    for task in tasks:  # left over: in a cycle
        level.setdefault(task.id, duration.get(task.id, DEFAULT_ESTIMATE_S))
    return level


def requested_first(tasks: list[Task], requested: dict[str, float]) -> list[Task]:
    """`tasks` with the requested ones moved to the front, oldest request first (a stable
    partition: the rest keep their order)."""
    if not requested:
        return tasks
    rank = {task_id: i for i, task_id in enumerate(requested)}
    first = sorted((t for t in tasks if t.id in rank), key=lambda t: rank[t.id])
    return first + [t for t in tasks if t.id not in rank]
