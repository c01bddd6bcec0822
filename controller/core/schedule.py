"""Pure scheduling rules: the admission limit (maxParallel and the CPU, memory and disk rules),
dependency readiness, write-scope conflicts.

Kept apart from `plan` so each rule can be read and tested alone. Two tasks never run at the
same time when one depends on the other (a dependency must be *merged* before a dependent
starts) or when their write scopes can overlap (decided conservatively by `globs`).
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.model.globs import literal_heads, scopes_overlap
from controller.model.observed import ResourcesObs
from controller.model.spec import Spec, Task, Threshold


def rule_limit(rules: list[Threshold], percent: float) -> int:
    """The `parallel` of the first rule whose `below` exceeds `percent` (last rule otherwise)."""
    for rule in rules:
        if rule.below is None or percent < rule.below:
            return rule.parallel
    return rules[-1].parallel


@dataclass(frozen=True)
class Admission:
    """How many agents may run now, and which rule set the number."""

    limit: int
    max_parallel: int
    cpu_limit: int
    memory_limit: int
    cpu_percent: float
    memory_percent: float
    disk_limit: int | None = None  # None: no disk rule, or the disk's use is unknown
    disk_percent: float | None = None

    @property
    def bound_by(self) -> str:
        if self.limit == self.max_parallel:
            return "maxParallel"
        if self.limit == self.cpu_limit:
            return f"cpu {self.cpu_percent:.0f}%"
        if self.limit == self.memory_limit or self.disk_percent is None:
            return f"memory {self.memory_percent:.0f}%"
        return f"disk {self.disk_percent:.0f}% used"


def admission(spec: Spec, resources: ResourcesObs) -> Admission:
    cpu = rule_limit(spec.resources.cpu, resources.cpu_percent)
    mem = rule_limit(spec.resources.memory, resources.memory_percent)
    disk = None
    if spec.resources.disk is not None and resources.disk_percent is not None:
        disk = rule_limit(spec.resources.disk, resources.disk_percent)
    limits = [spec.max_parallel, cpu, mem] + ([disk] if disk is not None else [])
    return Admission(
        limit=min(limits),
        max_parallel=spec.max_parallel,
        cpu_limit=cpu,
        memory_limit=mem,
        cpu_percent=resources.cpu_percent,
        memory_percent=resources.memory_percent,
        disk_limit=disk,
        disk_percent=resources.disk_percent,
    )


def unmet_dependencies(task: Task, done: frozenset[str] | set[str]) -> list[str]:
    """Direct dependencies of `task` that are not merged (or otherwise complete)."""
    return [d for d in task.depends_on if d not in done]


class ScopeHolders:
    """Tasks currently holding their write scope (running, or finished and not yet merged)."""

    def __init__(self) -> None:
        self._held: list[tuple[str, tuple[str, ...], frozenset[str] | None]] = []

    def add(self, task_id: str, scope: tuple[str, ...]) -> None:
        if scope:
            self._held.append((task_id, scope, literal_heads(scope)))

    def conflict(self, task_id: str, scope: tuple[str, ...]) -> str | None:
        """The id of a holder whose scope may overlap `scope`, or None."""
        if not scope:
            return None
        heads = literal_heads(scope)
        for holder, held, held_heads in self._held:
            if heads is not None and held_heads is not None and heads.isdisjoint(held_heads):
                continue  # different top-level folders: cannot overlap (saves the glob test)
            if holder != task_id and scopes_overlap(scope, held):
                return holder
        return None
