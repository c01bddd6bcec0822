"""Build `Observed` from the world at the start of a pass.

`observe()` does the I/O: a constant handful of git calls (integration sha, worktree list,
two for-each-ref, one log, one status of the integration checkout), one scan of the runs
directory, one store query, one resource sample, and a liveness check per unfinished run.
`assemble()` is the pure part that joins those readings into the planner's `Observed`;
it is unit-tested without any I/O.

How an attempt is joined from its two sources: the store holds the controller's verdicts
(outcome, reason, retry_at, conflicts, created_at, agent, base_sha); the runs directory holds
what the shim saw (pid, create_time, started_at; exit_code, ended_at, timed_out, signal).
The runs directory is the world, so its values win, the store filling gaps; an attempt known
to only one source still appears. `alive` is asked of the OS only for attempts that have a
pid and no exit record.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from controller.git import queries as git
from controller.model.names import task_for_branch
from controller.model.observed import (
    AttemptObs,
    BranchObs,
    Observed,
    ResourcesObs,
    WorktreeObs,
)
from controller.observe.procs import is_alive
from controller.observe.resources import ResourceSampler
from controller.observe.runs import RunRecord, read_runs
from controller.state.paths import StatePaths
from controller.state.store import AttemptRow, Store

AliveCheck = Callable[[int, float | None], bool]

__all__ = [
    "AliveCheck",
    "assemble",
    "integration_checkout_of",
    "join_attempt",
    "leftover_dirs",
    "observe",
    "task_worktrees",
]


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


def leftover_dirs(root: Path, worktrees: Iterable[WorktreeObs]) -> list[WorktreeObs]:
    """Empty directories directly under `root` that are no registered worktree (an agent
    deleted its worktree, `.git` included, and git forgot it): prunable, so the planner
    removes them. Directories with content are never reported (nothing here deletes data)."""
    registered = {wt.path for wt in worktrees}
    found = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    for entry in entries:
        path = os.path.realpath(entry.path)
        if path in registered or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            empty = not os.listdir(path)
        except OSError:
            continue
        if empty:
            found.append(WorktreeObs(path=path, head=None, branch=None, prunable=True))
    return found


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
    )


def _integration_ref(integration: str) -> str:
    # a tag or remote ref with the same short name must not shadow the branch
    return integration if integration.startswith("refs/") else f"refs/heads/{integration}"


def _resolved(wt: WorktreeObs) -> WorktreeObs:
    real = os.path.realpath(wt.path)
    return wt if real == wt.path else replace(wt, path=real)


def observe(
    *,
    repo: Path,
    integration: str,
    worktree_root: Path,
    state: StatePaths,
    store: Store | None,
    sampler: ResourceSampler | None,
    draining: bool = False,
    now: float,
) -> Observed:
    """Read the world once: at most 6 git calls, whatever the number of tasks.

    After the integration sha, the independent readings run side by side (git is a separate
    process, the store read releases the GIL), so a pass takes about three git calls' time.
    """
    integration_sha = git.rev(repo, _integration_ref(integration))

    def read_worktrees() -> tuple[list[WorktreeObs], WorktreeObs | None, bool | None]:
        found = [_resolved(w) for w in git.list_worktrees(repo)]
        found += leftover_dirs(Path(os.path.realpath(worktree_root)), found)
        checkout = integration_checkout_of(found, integration)
        dirty = None
        if checkout is not None and not checkout.prunable:
            dirty = git.is_dirty(checkout.path)
        return found, checkout, dirty

    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="observe") as pool:
        wt_future = pool.submit(read_worktrees)
        # one sha for the whole pass, so branches and merged_tasks agree with integration_sha
        br_future = pool.submit(git.task_branches, repo, integration_sha)
        merged_future = pool.submit(
            lambda: git.merged_tasks(repo, integration_sha) if integration_sha else frozenset()
        )
        store_rows = store.attempts_by_task() if store is not None else {}
        resources = sampler.sample(now) if sampler is not None else ResourcesObs()
        worktrees, _checkout, dirty = wt_future.result()
        branches = br_future.result()
        merged = merged_future.result()

    def build() -> Observed:
        return assemble(
            integration=integration,
            integration_sha=integration_sha,
            worktrees=worktrees,
            integration_dirty=dirty,
            worktree_root=Path(os.path.realpath(worktree_root)),
            branches=branches,
            merged_tasks=merged,
            store_rows=store_rows,
            runs=read_runs(state, settled_attempts(store_rows)),
            alive=is_alive,
            resources=resources,
            draining=draining,
        )

    observed = build()
    if _exited_unrecorded(observed):
        # The runs directory was read before the liveness checks; a process that exited
        # in between has written its exit record by now (the shim writes it before it
        # exits), so read again rather than call the attempt lost.
        observed = build()
    return observed


def _exited_unrecorded(observed: Observed) -> bool:
    for attempts in observed.attempts.values():
        last = attempts[-1] if attempts else None
        if last and last.pid and not last.alive and last.exit_code is None and not last.outcome:
            return True
    return False
