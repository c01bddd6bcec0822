"""Joining one pass's readings into the planner's `Observed` (pure, given a pure `alive`).

How an attempt is joined from its two sources: the store holds what the controller itself
recorded -- the pid and create time of the shim from its own `Popen` (`set_launched`), and
its verdicts (outcome, reason, retry_at, conflicts, created_at, agent, base_sha); the runs
directory holds what the shim saw (started_at; exit_code, ended_at, timed_out, signal). An
attempt known to only one source still appears. `alive` is asked only for a task's latest
attempt that has a pid and no exit record.

Which process an attempt is -- the one `stop` signals, with its whole process group -- is
taken from the store, never from the runs directory: the agent can write there (it learns
the folder from `ORCHESTRATOR_PROGRESS_FILE`), and a start record naming another process
would get that process's group killed. A record can only add information (exit code, times,
progress). One exception, for a controller killed between starting a shim and recording its
pid: when the store has no pid, the start record's pid is taken only if `vouch` confirms it
is the shim of this very attempt (alive, with that create time, running the shim script
with this attempt's `--start-record` path: see `procs.is_attempt_shim`), and a remote
runner's job handle only if it names this task and attempt; otherwise the attempt has no
known process.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple, TypeVar

from controller.model.names import task_for_branch
from controller.model.observed import (
    AgentReport,
    AttemptObs,
    BranchObs,
    ConflictCheck,
    Holdoff,
    Observed,
    ResourcesObs,
    WorktreeObs,
)
from controller.observe.reports import report_from_row
from controller.observe.runs import RunRecord, StartRecord
from controller.state.store import AttemptRow

# (pid, create_time, start_id) -> does that process still run? (`state.identity.is_alive`)
AliveCheck = Callable[[int, float | None, str | None], bool]
# (task, attempt number, pid, create_time, start_id) -> is that process this attempt's shim?
VouchCheck = Callable[[str, int, int, float | None, str | None], bool]


class _Process(NamedTuple):
    pid: int | None = None
    create_time: float | None = None
    start_id: str | None = None
    handle: str | None = None


_T = TypeVar("_T")


def _first(*values: _T | None) -> _T | None:
    for value in values:
        if value is not None:
            return value
    return None


def _never(
    task: str, number: int, pid: int, create_time: float | None, start_id: str | None
) -> bool:
    return False


def _process_of(
    task: str,
    number: int,
    row: AttemptRow | None,
    start: StartRecord | None,
    vouch: VouchCheck,
) -> _Process:
    """The process (or job) of an attempt: the store's (see the module docstring)."""
    if row is not None and (row.pid is not None or row.handle is not None):
        return _Process(row.pid, row.create_time, row.start_id, row.handle)
    if (
        start is not None
        and start.pid
        and vouch(task, number, start.pid, start.create_time, start.start_id)
    ):
        return _Process(start.pid, start.create_time, start.start_id)
    if start is not None and start.handle and start.handle.endswith(f"-{task}-{number}"):
        return _Process(handle=start.handle)  # a job id names its task and attempt (ray)
    return _Process()


def _running(proc: _Process, alive: AliveCheck) -> bool:
    if proc.handle:
        return True  # a remote runner's job runs until its runner writes the exit record
    return bool(proc.pid) and alive(proc.pid, proc.create_time, proc.start_id)  # type: ignore[arg-type]


def join_attempt(
    task: str,
    number: int,
    row: AttemptRow | None,
    run: RunRecord | None,
    alive: AliveCheck,
    vouch: VouchCheck = _never,
) -> AttemptObs:
    """One attempt from its store row and runs-dir record (either may be None)."""
    if run is None and row is not None:
        return _from_row(task, number, row, alive)
    start = run.start if run else None
    exit_ = run.exit if run else None
    proc = _process_of(task, number, row, start, vouch)
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
        pid=proc.pid,
        create_time=proc.create_time,
        start_id=proc.start_id,
        alive=exit_ is None and (row is None or row.exit_code is None) and _running(proc, alive),
        handle=proc.handle,
        outcome=row.outcome if row else None,
        reason=row.reason if row else "",
        retry_at=row.retry_at if row else None,
        conflicts=row.conflicts if row else (),
        created_at=row.created_at if row else None,
        agent=row.agent if row else None,
        base_sha=row.base_sha if row else None,
        timed_out=exit_.timed_out if exit_ else False,
        signal=exit_.signal if exit_ else None,
        report=(run.report if run else None) or (_row_report(row) if row else None),
        port=row.port if row else None,
        setup_failed=exit_.setup_failed if exit_ else False,
        setup_error=exit_.setup_error if exit_ else "",
    )


def _row_report(row: AttemptRow) -> AgentReport | None:
    tokens = (row.input_tokens, row.output_tokens, row.cache_read_tokens, row.cache_write_tokens)
    return report_from_row(tokens, row.cost_usd, row.turns)


def _from_row(task: str, number: int, row: AttemptRow, alive: AliveCheck) -> AttemptObs:
    """An attempt the runs directory has nothing (more) to say about: the store's account.

    An exit code in the store means the attempt has exited; otherwise the OS is asked.
    """
    proc = _Process(row.pid, row.create_time, row.start_id, row.handle)
    return AttemptObs(
        task=task,
        number=number,
        started_at=row.started_at,
        ended_at=row.ended_at,
        exit_code=row.exit_code,
        pid=row.pid,
        create_time=row.create_time,
        start_id=row.start_id,
        alive=row.exit_code is None and _running(proc, alive),
        handle=row.handle,
        outcome=row.outcome,
        reason=row.reason,
        retry_at=row.retry_at,
        conflicts=row.conflicts,
        created_at=row.created_at,
        agent=row.agent,
        base_sha=row.base_sha,
        report=_row_report(row),
        port=row.port,
    )


def join_attempts(
    store_rows: Mapping[str, Sequence[AttemptRow]],
    runs: Mapping[str, Mapping[int, RunRecord]],
    alive: AliveCheck,
    vouch: VouchCheck = _never,
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
            join_attempt(
                task,
                n,
                rows.get(n),
                task_runs.get(n),
                alive if n == last else _dead,
                vouch if n == last else _never,
            )
            for n in numbers
        )
    return out


def _dead(pid: int, create_time: float | None, start_id: str | None) -> bool:
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
    alive: AliveCheck = _dead,
    vouch: VouchCheck = _never,
    resources: ResourcesObs | None = None,
    draining: bool = False,
    holdoffs: Mapping[tuple[str, str], Holdoff] | None = None,
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
        attempts=join_attempts(store_rows, runs, alive, vouch),
        resources=resources if resources is not None else ResourcesObs(),
        draining=draining,
        holdoffs=dict(holdoffs or {}),
        conflict_checks=dict(conflict_checks or {}),
        agent_durations=agent_durations(store_rows),
    )
