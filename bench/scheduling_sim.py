"""The scheduling bench's workload and its zero-overhead simulations (no processes, no git).

A seeded synthetic backlog (`make_workload`), the makespan lower bound (critical path, work
per slot, heaviest scope group) and list-scheduling simulations of the planner's policy and
of other priorities, so that `scheduling.py` can say how much of a makespan is the policy's
and how much the controller's.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Job:
    id: str
    group: int
    deps: tuple[str, ...]
    sleep: float


def make_workload(
    seed: int, n: int, groups: int, edge_p: float, lo: float = 0.2, hi: float = 2.0
) -> list[Job]:
    rng = random.Random(seed)
    jobs: list[Job] = []
    for i in range(n):
        deps = tuple(j.id for j in jobs if rng.random() < edge_p)
        jobs.append(Job(f"t{i:02d}", rng.randrange(groups), deps, round(rng.uniform(lo, hi), 2)))
    return jobs


def critical_path(jobs: Sequence[Job], dur: dict[str, float]) -> float:
    finish: dict[str, float] = {}
    for j in jobs:  # backlog order is a topological order (deps are earlier tasks)
        finish[j.id] = max((finish[d] for d in j.deps), default=0.0) + dur[j.id]
    return max(finish.values())


def group_work(jobs: Sequence[Job], dur: dict[str, float]) -> dict[int, float]:
    out: dict[int, float] = {}
    for j in jobs:
        out[j.group] = out.get(j.group, 0.0) + dur[j.id]
    return out


@dataclass(frozen=True)
class Bound:
    critical: float
    per_slot: float
    group: float

    @property
    def value(self) -> float:
        return max(self.critical, self.per_slot, self.group)

    @property
    def bound_by(self) -> str:
        return {self.critical: "critical path", self.per_slot: "work/slots"}.get(
            self.value, "scope group"
        )


def lower_bound(jobs: Sequence[Job], dur: dict[str, float], limit: int) -> Bound:
    return Bound(
        critical_path(jobs, dur), sum(dur.values()) / limit, max(group_work(jobs, dur).values())
    )


def simulate(
    jobs: Sequence[Job],
    dur: dict[str, float],
    limit: int,
    priority: Callable[[Job], Any],
    merge_delay: dict[str, float] | None = None,
) -> float:
    """List scheduling as the planner does it: a slot is held while running, the scope group
    until merged, and a dependency counts once merged. No controller overhead."""
    delay = merge_delay or {}
    order = sorted(jobs, key=priority)
    t = 0.0
    running: dict[str, float] = {}
    pending: dict[str, float] = {}
    merged: set[str] = set()
    started: set[str] = set()
    group = {j.id: j.group for j in jobs}
    while len(merged) < len(jobs):
        held = {group[i] for i in (*running, *pending)}
        for j in order:
            if len(running) >= limit:
                break
            if j.id in started or j.group in held or not set(j.deps) <= merged:
                continue
            started.add(j.id)
            running[j.id] = t + dur[j.id]
            held.add(j.group)
        t = min([*running.values(), *pending.values()])
        for i, end in list(running.items()):
            if end <= t:
                del running[i]
                pending[i] = end + delay.get(i, 0.0)
        for i, at in list(pending.items()):
            if at <= t:
                del pending[i]
                merged.add(i)
    return t


def bottom_levels(jobs: Sequence[Job], dur: dict[str, float]) -> dict[str, float]:
    """Longest path from each task to the end of the DAG, the task included."""
    children: dict[str, list[str]] = {j.id: [] for j in jobs}
    for j in jobs:
        for d in j.deps:
            children[d].append(j.id)
    level: dict[str, float] = {}
    for j in reversed(jobs):
        level[j.id] = dur[j.id] + max((level[c] for c in children[j.id]), default=0.0)
    return level


def best_found(jobs: Sequence[Job], dur: dict[str, float], limit: int, tries: int) -> float:
    """The best of critical-path priority and `tries` random priorities (an upper bound on OPT)."""
    level = bottom_levels(jobs, dur)
    rng = random.Random(0)
    best = simulate(jobs, dur, limit, lambda j: -level[j.id])
    for _ in range(tries):
        keys = {j.id: rng.random() for j in jobs}
        best = min(best, simulate(jobs, dur, limit, lambda j, k=keys: k[j.id]))
    return best


def policy_survey(
    first_seed: int, seeds: int, tasks: int, groups: int, edge_p: float, parallel: int
) -> dict[str, list[float]]:
    """Makespan / bound of each scheduling policy, simulated, over `seeds` workloads."""
    out: dict[str, list[float]] = {"backlog order (the planner)": [], "critical path": []}
    out["best of CP + 100 random priorities"] = []
    for seed in range(first_seed, first_seed + seeds):
        jobs = make_workload(seed, tasks, groups, edge_p)
        dur = {j.id: j.sleep for j in jobs}
        bound = lower_bound(jobs, dur, parallel).value
        level = bottom_levels(jobs, dur)
        runs = (
            simulate(jobs, dur, parallel, lambda j: int(j.id[1:])),
            simulate(jobs, dur, parallel, lambda j, lv=level: -lv[j.id]),
            best_found(jobs, dur, parallel, 100),
        )
        for key, value in zip(out, runs, strict=True):
            out[key].append(value / bound)
    return out
