"""Build `Observed` from the world at the start of a pass.

`observe()` does the I/O: a constant handful of git calls (integration sha, worktree list,
two for-each-ref, one log, one status of the integration checkout), one scan of the runs
directory, a few store queries (attempts, requests, orders, conflict checks, hold-offs, rate
limiters), one resource sample, and a liveness check per unfinished run.
`assemble` joins those readings into the planner's `Observed` without any I/O.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import NamedTuple

from controller import git
from controller.model.observed import (
    ConflictCheck,
    Holdoff,
    Observed,
    ResourcesObs,
    TaskOrders,
    WorktreeObs,
)
from controller.model.ratelimit import LimiterState
from controller.observe.assemble import assemble, integration_checkout_of, settled_attempts
from controller.observe.procs import is_alive, is_attempt_shim
from controller.observe.resources import ResourceSampler
from controller.observe.runs import read_runs
from controller.state import holdoffs
from controller.state.paths import StatePaths
from controller.state.store import AttemptRow, Store


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


def _integration_ref(integration: str) -> str:
    # a tag or remote ref with the same short name must not shadow the branch
    return integration if integration.startswith("refs/") else f"refs/heads/{integration}"


def _resolved(wt: WorktreeObs) -> WorktreeObs:
    real = os.path.realpath(wt.path)
    return wt if real == wt.path else replace(wt, path=real)


def _checkout_dirty(repo: git.Repo, checkout: WorktreeObs | None) -> bool | None:
    """Whether the integration checkout has tracked changes; a checkout whose pointers were
    tampered with counts as dirty, so nothing is merged into it."""
    if checkout is None or checkout.prunable:
        return None
    try:
        place = git.worktree_place(repo, Path(checkout.path), allow_main=True)
    except git.WorktreeRedirected:
        return True
    return git.is_dirty(place)


def _read_worktrees(
    repo: git.Repo, integration: str, worktree_root: Path
) -> tuple[list[WorktreeObs], bool | None]:
    """Every worktree (and leftover directory), and whether the integration checkout is dirty."""
    found = [_resolved(w) for w in git.list_worktrees(repo)]
    found += leftover_dirs(worktree_root, found)
    return found, _checkout_dirty(repo, integration_checkout_of(found, integration))


class StoreFacts(NamedTuple):
    """What the store adds to an observation."""

    rows: dict[str, list[AttemptRow]]
    requested: dict[str, float]  # spawn-parallel requests
    orders: dict[str, TaskOrders]  # retry, reset, stop --task
    checks: dict[str, ConflictCheck]  # early conflict checks
    held: dict[tuple[str, str], Holdoff]  # failing actions held off
    limiters: dict[str, LimiterState]  # the fleet's rate limiter per provider

    def add_to(self, observed: Observed, present: frozenset[str]) -> Observed:
        """`observed` with what the store adds outside `assemble`, and the `present` paths."""
        return replace(
            observed,
            requested=self.requested,
            orders=self.orders,
            present_paths=present,
            rate_limits=self.limiters,
        )


def _store_facts(store: Store | None) -> StoreFacts:
    if store is None:
        return StoreFacts({}, {}, {}, {}, {}, {})
    return StoreFacts(
        store.attempts_by_task(),
        store.requests(),
        store.orders(),
        store.conflict_checks(),
        holdoffs.read(store),
        store.rate_limits(),
    )


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
    probe: Sequence[str] = (),
) -> Observed:
    """Read the world once: at most 7 git calls, whatever the number of tasks (the 7th looks
    up `probe`, repository paths such as specBacklog files, on the integration branch).

    After the integration sha, the independent readings run side by side (git is a separate
    process, the store read releases the GIL), so a pass takes about three git calls' time.
    """
    pinned = git.open_repo(repo)
    root = Path(os.path.realpath(worktree_root))
    sha = git.rev_parse(pinned, _integration_ref(integration))
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="observe") as pool:
        wt_future = pool.submit(_read_worktrees, pinned, integration, root)
        # one sha for the whole pass, so branches and merged_tasks agree with integration_sha
        br_future = pool.submit(git.task_branches, pinned, sha)
        merged_future = pool.submit(git.merged_tasks, pinned, sha) if sha else None
        facts = _store_facts(store)
        resources = sampler.sample(now) if sampler is not None else ResourcesObs()
        present = frozenset(git.existing_paths(pinned, sha, list(probe)) if sha and probe else ())
        worktrees, dirty = wt_future.result()
        branches = br_future.result()
        merged = merged_future.result() if merged_future else frozenset[str]()

    def build() -> Observed:
        return assemble(
            integration=integration,
            integration_sha=sha,
            worktrees=worktrees,
            integration_dirty=dirty,
            worktree_root=root,
            branches=branches,
            merged_tasks=merged,
            store_rows=facts.rows,
            runs=read_runs(state, settled_attempts(facts.rows)),
            alive=is_alive,
            vouch=partial(_vouch, state),
            resources=resources,
            draining=draining,
            holdoffs=facts.held,
            conflict_checks=facts.checks,
        )

    observed = build()
    if _exited_unrecorded(observed):
        # The runs directory was read before the liveness checks; a process that exited
        # in between has written its exit record by now (the shim writes it before it
        # exits), so read again rather than call the attempt lost.
        observed = build()
    return facts.add_to(observed, present)


def _vouch(
    state: StatePaths, task: str, n: int, pid: int, ct: float | None, start: str | None
) -> bool:
    """Whether `pid` is this attempt's shim, by its start record (`is_attempt_shim`)."""
    return is_attempt_shim(pid, ct, state.start_record(task, n), start)


def _exited_unrecorded(observed: Observed) -> bool:
    for attempts in observed.attempts.values():
        last = attempts[-1] if attempts else None
        if last and last.pid and not last.alive and last.exit_code is None and not last.outcome:
            return True
    return False
