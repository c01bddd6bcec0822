"""Build `Observed` from the world at the start of a pass.

`observe()` does the I/O: a constant handful of git calls (integration sha, worktree list,
two for-each-ref, one log, one status of the integration checkout), one scan of the runs
directory, two store queries (attempts, rate limiters), one resource sample, and a liveness
check per unfinished run.
`assemble` joins those readings into the planner's `Observed` without any I/O.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from controller import git
from controller.model.observed import Observed, ResourcesObs, WorktreeObs
from controller.observe.assemble import assemble, integration_checkout_of, settled_attempts
from controller.observe.procs import is_alive, is_attempt_shim
from controller.observe.resources import ResourceSampler
from controller.observe.runs import read_runs
from controller.state.paths import StatePaths
from controller.state.store import Store


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
    pinned = git.open_repo(repo)
    root = Path(os.path.realpath(worktree_root))
    sha = git.rev_parse(pinned, _integration_ref(integration))
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="observe") as pool:
        wt_future = pool.submit(_read_worktrees, pinned, integration, root)
        # one sha for the whole pass, so branches and merged_tasks agree with integration_sha
        br_future = pool.submit(git.task_branches, pinned, sha)
        merged_future = pool.submit(
            lambda: git.merged_tasks(pinned, sha) if sha else frozenset[str]()
        )
        store_rows = store.attempts_by_task() if store is not None else {}
        limiters = store.rate_limits() if store is not None else {}
        resources = sampler.sample(now) if sampler is not None else ResourcesObs()
        worktrees, dirty = wt_future.result()
        branches, merged = br_future.result(), merged_future.result()

    def build() -> Observed:
        return assemble(
            integration=integration,
            integration_sha=sha,
            worktrees=worktrees,
            integration_dirty=dirty,
            worktree_root=root,
            branches=branches,
            merged_tasks=merged,
            store_rows=store_rows,
            runs=read_runs(state, settled_attempts(store_rows)),
            alive=is_alive,
            vouch=lambda task, n, pid, ct: is_attempt_shim(pid, ct, state.start_record(task, n)),
            resources=resources,
            draining=draining,
        )

    observed = build()
    if _exited_unrecorded(observed):
        # The runs directory was read before the liveness checks; a process that exited
        # in between has written its exit record by now (the shim writes it before it
        # exits), so read again rather than call the attempt lost.
        observed = build()
    return replace(observed, rate_limits=limiters)


def _exited_unrecorded(observed: Observed) -> bool:
    for attempts in observed.attempts.values():
        last = attempts[-1] if attempts else None
        if last and last.pid and not last.alive and last.exit_code is None and not last.outcome:
            return True
    return False
