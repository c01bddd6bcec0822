"""The activity summary: what happened in a time window, and what parallelism bought.

A pure function of (spec, observed attempts, plan phases, window, now). Attempt intervals
are clipped to the window (a live attempt counts up to `now`); from them, through
`controller.core.metrics.parallelism`:

- speedup (shown as "parallelism") = sum of attempt durations, failed ones too / wall-clock
  time with at least one agent running (no sequential run is measured);
- efficiency = speedup / maxParallel (the configured parallel limit);
- parallelization rate = share of that busy time with two or more agents running;
- time saved = sum of attempt durations - busy time;
- cost: what the attempts in the window cost as their agents reported it, per task, per
  agent, in all and per merged task (`views.costs`).

Tasks are grouped by where they stand now: completed (merged, failed for good or rejected,
with an attempt in the window), active (running, verifying, merging or between retries),
queued (not started: queued, blocked, paused). Failures are attempts in the window that did
not land (exit != 0, timeout, lost, conflict, verify failure, rejection), counted by reason;
retries are attempts after the first that started in the window, counted by the reason the
attempt before them failed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from controller.core.lifecycle import classify_attempt, failure_reason
from controller.core.metrics import Parallelism, parallelism
from controller.model.observed import AttemptObs
from controller.model.spec import Spec
from controller.views.costs import Costs, costs_of

COMPLETED_PHASES = frozenset({"merged", "failed", "rejected", "stopped", "orphan"})
ACTIVE_PHASES = frozenset({"running", "starting", "stopping", "verifying", "merging", "retrying"})
QUEUED_PHASES = frozenset({"queued", "blocked", "paused"})
NOT_FAILURES = frozenset({"merged", "succeeded", "stopped"})
_ATTEMPT_NOTE = re.compile(r"\s*\(attempt \d+ of \d+\)")


@dataclass(frozen=True)
class Bar:
    """One attempt on the timeline (clipped to the window)."""

    task: str
    number: int
    start: float
    end: float
    outcome: str  # merged, succeeded, running, failed, conflict, ...
    agent: str | None


@dataclass(frozen=True)
class TaskActivity:
    task: str
    agent: str | None
    phase: str
    attempts: int  # attempts that overlap the window
    duration_s: float  # their time inside the window
    outcome: str
    cost_usd: float = 0.0  # what those attempts cost, as their agents reported it


@dataclass(frozen=True)
class Summary:
    start: float
    now: float
    hours: float
    limit: int
    completed: tuple[TaskActivity, ...]
    active: tuple[TaskActivity, ...]
    queued: tuple[TaskActivity, ...]
    parallelism: Parallelism
    failures: dict[str, int]
    retries: dict[str, int]
    attempts: int
    bars: tuple[Bar, ...]
    costs: Costs = field(default_factory=Costs)

    @property
    def efficiency(self) -> float:
        return self.parallelism.efficiency(self.limit)

    def as_dict(self) -> dict[str, Any]:
        p = self.parallelism
        return {
            "window": {"start": self.start, "end": self.now, "hours": self.hours},
            "tasks": {
                "completed": [asdict(t) for t in self.completed],
                "active": [asdict(t) for t in self.active],
                "queued": [asdict(t) for t in self.queued],
            },
            "counts": {
                "completed": len(self.completed),
                "active": len(self.active),
                "queued": len(self.queued),
                "attempts": self.attempts,
                "failures": sum(self.failures.values()),
                "retries": sum(self.retries.values()),
            },
            "parallelism": {
                "work_s": round(p.work_s, 3),
                "busy_s": round(p.busy_s, 3),
                "overlap_s": round(p.overlap_s, 3),
                "speedup": round(p.speedup, 3),
                "efficiency": round(self.efficiency, 3),
                "limit": self.limit,
                "parallelization_rate": round(p.parallelization_rate, 3),
                "time_saved_s": round(p.time_saved_s, 3),
            },
            "failures_by_reason": self.failures,
            "retries_by_reason": self.retries,
            "cost": self.costs.as_dict(),
            "attempts": [asdict(b) for b in self.bars],
        }


def attempt_outcome(a: AttemptObs, now: float) -> str:
    """The outcome to show for one attempt (its verdict, else what the world says)."""
    if a.outcome:
        return a.outcome
    kind = classify_attempt(a, now)
    if kind == "starting":
        return "running"
    return kind


def _span(a: AttemptObs, start: float, now: float) -> tuple[float, float] | None:
    if a.started_at is None:
        return None
    end = a.ended_at if a.ended_at is not None else (now if a.alive else None)
    if end is None:
        return None
    s, e = max(a.started_at, start), min(end, now)
    return (s, e) if e > s else None


def _failed(a: AttemptObs, now: float) -> bool:
    if a.outcome is not None:
        return a.outcome not in NOT_FAILURES
    return classify_attempt(a, now) == "failed"


def failure_key(a: AttemptObs) -> str:
    """`outcome: reason` with per-attempt details (attempt n of m) dropped, for grouping."""
    outcome = a.outcome or "failed"
    reason = _ATTEMPT_NOTE.sub("", failure_reason(a)).strip()
    if reason.startswith(outcome.replace("_", " ")) or reason.startswith(outcome):
        return reason
    return f"{outcome}: {reason}"


def build_summary(
    spec: Spec,
    attempts: Mapping[str, Sequence[AttemptObs]],
    phases: Mapping[str, str],
    *,
    hours: float,
    now: float,
) -> Summary:
    start = now - hours * 3600.0
    agent_of = {t.id: t.agent for t in spec.backlog}
    bars: list[Bar] = []
    failures: Counter[str] = Counter()
    retries: Counter[str] = Counter()
    completed: list[TaskActivity] = []
    active: list[TaskActivity] = []
    queued: list[TaskActivity] = []
    windowed: dict[str, list[AttemptObs]] = {}
    ids = [t.id for t in spec.backlog] + sorted(set(attempts) - set(agent_of))
    for task_id in ids:
        rows = attempts.get(task_id, ())
        phase = phases.get(task_id) or ("orphan" if task_id not in agent_of else "queued")
        n_in, dur = _count_window(task_id, rows, agent_of, start, now, bars, failures, retries)
        windowed[task_id] = [a for a in rows if _span(a, start, now) is not None]
        last = rows[-1] if rows else None
        activity = TaskActivity(
            task=task_id,
            agent=(last.agent if last and last.agent else None) or agent_of.get(task_id),
            phase=phase,
            attempts=n_in,
            duration_s=round(dur, 3),
            outcome=phase if phase != "orphan" else (last.outcome or "removed"),
            cost_usd=round(sum(a.cost_usd for a in windowed[task_id]), 6),
        )
        if phase in ACTIVE_PHASES:
            active.append(activity)
        elif phase in QUEUED_PHASES:
            queued.append(activity)
        elif n_in:
            (completed if phase in COMPLETED_PHASES else active).append(activity)
    stats = parallelism((b.start, b.end) for b in bars)
    return Summary(
        start=start,
        now=now,
        hours=hours,
        limit=spec.max_parallel,
        completed=tuple(completed),
        active=tuple(active),
        queued=tuple(queued),
        parallelism=stats,
        failures=dict(failures.most_common()),
        retries=dict(retries.most_common()),
        attempts=len(bars),
        bars=tuple(sorted(bars, key=lambda b: (b.start, b.task, b.number))),
        costs=costs_of(
            spec, windowed, sum(1 for t in completed if t.outcome == "merged"), budgets=False
        ),
    )


def _count_window(
    task_id: str,
    rows: Sequence[AttemptObs],
    agent_of: Mapping[str, str],
    start: float,
    now: float,
    bars: list[Bar],
    failures: Counter[str],
    retries: Counter[str],
) -> tuple[int, float]:
    """Add one task's attempts in the window to `bars`, `failures` and `retries`; return how
    many ran in the window and for how long in all."""
    n_in, dur = 0, 0.0
    for i, a in enumerate(rows):
        span = _span(a, start, now)
        agent = a.agent or agent_of.get(task_id)
        if span is not None:
            n_in += 1
            dur += span[1] - span[0]
            bars.append(Bar(task_id, a.number, span[0], span[1], attempt_outcome(a, now), agent))
        ended_in = a.ended_at is not None and start <= a.ended_at <= now
        if ended_in and _failed(a, now):
            failures[failure_key(a)] += 1
        if i > 0 and a.started_at is not None and start <= a.started_at <= now:
            retries[failure_key(rows[i - 1])] += 1
    return n_in, dur
