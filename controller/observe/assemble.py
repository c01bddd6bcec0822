"""Joining one pass's readings into the planner's `Observed` (pure, given a pure `alive`).

How an attempt is joined from its two sources: the store holds the controller's verdicts
(outcome, reason, retry_at, conflicts, created_at, agent, base_sha); the runs directory holds
what the shim saw (pid, create_time, started_at; exit_code, ended_at, timed_out, signal).
The runs directory is the world, so its values win, the store filling gaps; an attempt known
to only one source still appears. `alive` is asked only for a task's latest attempt that has
a pid and no exit record.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from controller.model.names import task_for_branch
from controller.model.observed import (
    AttemptObs,
    BranchObs,
    ConflictCheck,
    Observed,
    ResourcesObs,
    WorktreeObs,
)
from controller.observe.runs import RunRecord
from controller.state.store import AttemptRow

AliveCheck = Callable[[int, float | None], bool]


_T = TypeVar("_T")


def _first(*values: _T | None) -> _T | None:
    for value in values:
        if value is not None:
            return value
    return None


def join_attempt(
    task: str,
    number: int,
    row: AttemptRow | None,
    run: RunRecord | None,
    alive: AliveCheck,
) -> AttemptObs:
    """One attempt from its store row and runs-dir record (either may be None)."""
    if run is None and row is not None:
        return _from_row(task, number, row, alive)
    start = run.start if run else None
    exit_ = run.exit if run else None
    pid = _first(start.pid if start else None, row.pid if row else None)
    handle = _first(start.handle if start else None, row.handle if row else None)
    create_time = _first(start.create_time if start else None, row.create_time if row else None)
    if exit_ is not None:
        exit_code = exit_.exit_code
        if exit_code is None and exit_.signal:
            exit_code = -exit_.signal  # killed: report like subprocess does
        exit_code = _first(exit_code, row.exit_code if row else None)
        ended_at = _first(exit_.ended_at, row.ended_at if row else None)
    else:
        exit_code = row.exit_code if row else None
        ended_at = row.ended_at if row else None
    return AttemptObs(
        task=task,
        number=number,
        started_at=_first(start.started_at if start else None, row.started_at if row else None),
        ended_at=ended_at,
        exit_code=exit_code,
        pid=pid,
        create_time=create_time,
        alive=exit_ is None
        and (row is None or row.exit_code is None)
        and (bool(handle) or (bool(pid) and alive(pid, create_time))),
        handle=handle,
        outcome=row.outcome if row else None,
        reason=row.reason if row else "",
        retry_at=row.retry_at if row else None,
        conflicts=row.conflicts if row else (),
        created_at=row.created_at if row else None,
        agent=row.agent if row else None,
        base_sha=row.base_sha if row else None,
        timed_out=exit_.timed_out if exit_ else False,
        signal=exit_.signal if exit_ else None,
    )


def _from_row(task: str, number: int, row: AttemptRow, alive: AliveCheck) -> AttemptObs:
    """An attempt the runs directory has nothing (more) to say about: the store's account.

    An exit code in the store means the attempt has exited; otherwise the OS is asked.
    """
    pid, create_time, handle = row.pid, row.create_time, row.handle
    running = row.exit_code is None and (
        bool(handle) or (bool(pid) and alive(pid, create_time))  # type: ignore[arg-type]
    )
    return AttemptObs(
        task=task,
        number=number,
        started_at=row.started_at,
        ended_at=row.ended_at,
        exit_code=row.exit_code,
        pid=pid,
        create_time=create_time,
        alive=running,
        handle=handle,
        outcome=row.outcome,
        reason=row.reason,
        retry_at=row.retry_at,
        conflicts=row.conflicts,
        created_at=row.created_at,
        agent=row.agent,
        base_sha=row.base_sha,
    )


def join_attempts(
    store_rows: Mapping[str, Sequence[AttemptRow]],
    runs: Mapping[str, Mapping[int, RunRecord]],
    alive: AliveCheck,
) -> dict[str, tuple[AttemptObs, ...]]:
    """Union of store rows and run records per task, oldest attempt first."""
    out: dict[str, tuple[AttemptObs, ...]] = {}
    for task in sorted(store_rows.keys() | runs.keys()):
        rows = {r.number: r for r in store_rows.get(task, ())}
        task_runs = runs.get(task, {})
        numbers = sorted(rows.keys() | task_runs.keys())
        last = numbers[-1] if numbers else None
        # only a task's latest attempt can be running: ask the OS about that one alone
        out[task] = tuple(
            join_attempt(task, n, rows.get(n), task_runs.get(n), alive if n == last else _dead)
            for n in numbers
        )
    return out


def _dead(pid: int, create_time: float | None) -> bool:
    return False


def settled_attempts(store_rows: Mapping[str, Sequence[AttemptRow]]) -> dict[str, frozenset[int]]:
    """Attempts whose verdict, times and exit code the store already holds."""
    return {
        task: frozenset(r.number for r in rows if r.outcome and r.outcome != "succeeded")
        for task, rows in store_rows.items()
    }


def integration_checkout_of(
    worktrees: Iterable[WorktreeObs], integration: str
) -> WorktreeObs | None:
    """The worktree that has branch `integration` checked out, if any."""
    short = integration.removeprefix("refs/heads/")
    return next((w for w in worktrees if w.branch == short and not w.bare), None)


def task_worktrees(
    worktrees: Iterable[WorktreeObs], root: Path, task_branches: Iterable[str] = ()
) -> dict[str, WorktreeObs]:
    """Worktrees under `root` on a task branch, keyed by task id (paths compared as given;
    the caller passes `root` and worktree paths in the same, resolved, form).

    A worktree at a task's own path `root/<id>` whose branch `orchestrator/<id>` exists is
    that task's even when its agent switched it to another branch or detached its HEAD:
    otherwise it would never be pruned, and the commits only it holds never archived."""
    known = set(task_branches)
    out: dict[str, WorktreeObs] = {}
    for wt in worktrees:
        path = Path(wt.path)
        if not path.is_relative_to(root):
            continue
        task = task_for_branch(wt.branch) if wt.branch else None
        if task is None and path.parent == root and path.name in known:
            task = path.name
        if task is not None and task not in out:
            out[task] = wt
    return out


def agent_durations(store_rows: Mapping[str, Sequence[AttemptRow]]) -> dict[str, float]:
    """Median measured duration per agent, over attempts that finished their work (exit 0):
    the critical-path order's estimate for tasks without one."""
    found: dict[str, list[float]] = {}
    for rows in store_rows.values():
        for r in rows:
            if r.exit_code == 0 and r.agent and r.started_at is not None and r.ended_at is not None:
                found.setdefault(r.agent, []).append(max(0.0, r.ended_at - r.started_at))
    return {agent: statistics.median(values) for agent, values in found.items()}


def assemble(
    *,
    integration: str,
    integration_sha: str | None,
    worktrees: Sequence[WorktreeObs],
    integration_dirty: bool | None,
    worktree_root: Path,
    branches: Mapping[str, BranchObs],
    merged_tasks: frozenset[str],
    store_rows: Mapping[str, Sequence[AttemptRow]],
    runs: Mapping[str, Mapping[int, RunRecord]],
    alive: AliveCheck = lambda pid, create_time: False,
    resources: ResourcesObs | None = None,
    draining: bool = False,
    conflict_checks: Mapping[str, ConflictCheck] | None = None,
) -> Observed:
    """Join the readings of one pass into `Observed` (pure, given a pure `alive`)."""
    checkout = integration_checkout_of(worktrees, integration)
    if checkout is not None:
        checkout = replace(checkout, dirty=integration_dirty)
    return Observed(
        integration_sha=integration_sha,
        integration_checkout=checkout,
        merged_tasks=merged_tasks,
        worktrees=task_worktrees(worktrees, worktree_root, branches),
        branches=dict(branches),
        attempts=join_attempts(store_rows, runs, alive),
        resources=resources if resources is not None else ResourcesObs(),
        draining=draining,
        conflict_checks=dict(conflict_checks or {}),
        agent_durations=agent_durations(store_rows),
    )
