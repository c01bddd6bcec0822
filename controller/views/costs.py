"""What the agents cost, as they reported it: per attempt, task, agent, in all, per merged
task, and against the spec's budgets (a pure function of the spec and observed attempts).

Costs come from the agents themselves: a preset agent's stream (Claude Code's
`total_cost_usd`, priced by its model) or the JSON a `command` agent wrote to
`$ORCHESTRATOR_USAGE_FILE`; an attempt that reported nothing counts as zero. "Per merged
task" divides everything spent (failed attempts too) by the merged tasks: what landing one
task cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.core.budget import all_budgets
from controller.model.money import format_usd
from controller.model.observed import AttemptObs, Spent
from controller.model.spec import Spec


@dataclass(frozen=True)
class Costs:
    total_usd: float = 0.0
    by_agent: dict[str, float] = field(default_factory=dict)
    by_task: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    reported: int = 0  # attempts whose agent reported usage
    merged_tasks: int = 0
    budgets: tuple[dict[str, Any], ...] = ()

    @property
    def per_merged_task_usd(self) -> float | None:
        return self.total_usd / self.merged_tasks if self.merged_tasks else None

    def as_dict(self) -> dict[str, Any]:
        per = self.per_merged_task_usd
        return {
            "total_usd": round(self.total_usd, 6),
            "per_merged_task_usd": None if per is None else round(per, 6),
            "merged_tasks": self.merged_tasks,
            "by_agent": {k: round(v, 6) for k, v in sorted(self.by_agent.items())},
            "by_task": {k: round(v, 6) for k, v in sorted(self.by_task.items())},
            "tokens": self.tokens,
            "attempts_reporting": self.reported,
            "budgets": list(self.budgets),
        }


TOKEN_KINDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def costs_of(
    spec: Spec,
    attempts: Mapping[str, Sequence[AttemptObs]],
    merged: int,
    *,
    budgets: bool = True,
) -> Costs:
    """The cost figures of `attempts` (a task's agent: recorded, else the spec's)."""
    agent_of = {t.id: t.agent for t in spec.backlog}
    rows = {task: tuple(r) for task, r in attempts.items()}
    spent = Spent.of(rows, agent_of)
    tokens = dict.fromkeys(TOKEN_KINDS, 0)
    reported = 0
    for a in (a for r in rows.values() for a in r):
        usage = a.report.usage if a.report else None
        if usage is None:
            continue
        reported += 1
        for kind in TOKEN_KINDS:
            tokens[kind] += getattr(usage, kind)
    uses = all_budgets(spec, spent) if budgets else []
    return Costs(
        total_usd=spent.total,
        by_agent=dict(spent.by_agent),
        by_task=dict(spent.by_task),
        tokens=tokens,
        reported=reported,
        merged_tasks=merged,
        budgets=tuple(
            {
                "scope": u.scope,
                "usd": u.budget.usd,
                "spent_usd": round(u.spent, 6),
                "hard": u.budget.hard,
                "exhausted": u.exhausted,
            }
            for u in uses
        ),
    )


def cost_line(c: Costs) -> str:
    """`$0.0290 in all ($0.0036 per merged task); by agent: dev $0.0145; budget: ...`."""
    if not c.reported and not c.budgets:
        return "no agent has reported a cost yet"
    per = c.per_merged_task_usd
    parts = [format_usd(c.total_usd) + " in all"]
    parts[0] += f" ({format_usd(per)} per merged task)" if per is not None else ""
    if c.by_agent:
        agents = ", ".join(f"{a} {format_usd(v)}" for a, v in sorted(c.by_agent.items()))
        parts.append(f"by agent: {agents}")
    for b in c.budgets:
        over = ", spent" if b["exhausted"] else ""
        hard = " hard" if b["hard"] else ""
        what = f"{format_usd(b['spent_usd'])} of {format_usd(b['usd'])}"
        parts.append(f"budget ({b['scope']}{hard}): {what}{over}")
    return "; ".join(parts)
