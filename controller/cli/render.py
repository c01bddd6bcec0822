"""Rendering plans and problems for people (terraform-like text) and scripts (JSON).

Pure string building: the CLI decides where the text goes. Text lines are made safe for a
terminal (`model.safe_text.shown`: agent-chosen file names in reasons can hold escape
sequences); JSON carries the exact text.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from controller.model.safe_text import shown

if TYPE_CHECKING:
    from controller.core.plan import Plan

_ORDER = ("spawn", "retry", "merge", "prune", "stop")


def plan_lines(plan: Plan, *, show_waits: bool = True) -> list[str]:
    from controller.core.plan import SYMBOLS  # not at module level: it loads the pydantic spec

    rows: list[tuple[str, str, str, str]] = []

    def mark(task: str) -> str:  # generated tasks (specBacklog) say so
        serves = plan.generated.get(task)
        return f"[spec of {serves}] " if serves else ""

    for a in plan.actions:
        rows.append((SYMBOLS[a.kind], a.kind, shown(a.task), shown(mark(a.task) + a.reason)))
    if show_waits:
        for w in plan.waits:
            rows.append((SYMBOLS["wait"], "wait", shown(w.task), shown(mark(w.task) + w.reason)))
    width = max((len(r[2]) for r in rows), default=0)
    lines = [f"{sym} {kind:<6} {task:<{width}}  {reason}" for sym, kind, task, reason in rows]
    lines.append(plan_summary(plan))
    return lines


def plan_summary(plan: Plan) -> str:
    counts = plan.counts()
    if not counts:
        waiting = len(plan.waits)
        return (
            f"No changes. {waiting} task{'s' if waiting != 1 else ''} waiting."
            if waiting
            else ("No changes. Everything is converged.")
        )
    parts = [f"{counts[k]} {k}" for k in _ORDER if k in counts]
    adm = plan.admission
    return f"Plan: {', '.join(parts)}. (slots {plan.running}/{adm.limit}, {adm.bound_by})"


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)
