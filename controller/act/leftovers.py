"""What a killed controller leaves behind, cleared before it can wedge the next one.

A controller SIGKILLed at the wrong moment leaves:
- git lock files of the git call it was making (`refs/orchestrator/archive/t01/1.lock`
  after a kill inside `update-ref`): every later call on that ref fails until the file is
  gone. `clear_stale_locks` removes those no live process can hold (`git.locks`), and
  names the processes that may hold the others;
- a worktree directory renamed aside half-way through its removal (`git.clear_removed`);
- verify commands still running in their own sessions, noted beside their scratch
  worktrees when they started and stopped at the next start (`act.verify.kill_orphans`).

The session runs these at start, with the singleton lock held and before any pass; the
reconcile pass runs the lock clean-up again after an action fails.
"""

from __future__ import annotations

from loguru import logger

from controller import git
from controller.act.records import record_event
from controller.model.spec import Spec
from controller.state.paths import StatePaths
from controller.state.store import Store


def _checkout_admin(repo: git.Repo, integration: str) -> git.Place | None:
    """The git directory of the checkout the integration branch is fast-forwarded in."""
    checkout = git.worktree_for_branch(repo, integration)
    if checkout is None:
        return None
    try:
        return git.worktree_place(repo, checkout, allow_main=True)
    except git.WorktreeRedirected:
        return None


def clear_stale_locks(spec: Spec, paths: StatePaths, store: Store) -> git.LockReport:
    """Remove stale git lock files of the controller's own git calls (events say which);
    the report also names the locks that live processes may hold."""
    try:
        repo = git.open_repo(spec.repo_path)
        checkout = _checkout_admin(repo, spec.integration_branch)
        report = git.clear_stale_locks(
            repo,
            spec.integration_branch,
            [spec.worktree_root_path, paths.scratch],
            checkout_git_dir=checkout.git_dir if checkout else None,
        )
    except (git.GitError, OSError) as exc:
        logger.warning(f"could not look for stale git locks: {exc}")
        return git.LockReport()
    if report.removed:
        shown = ", ".join(str(p) for p in report.removed)
        record_event(
            store,
            "stale_locks_removed",
            f"removed {len(report.removed)} git lock file(s) no live process held: {shown}",
            data={"paths": [str(p) for p in report.removed]},
        )
    return report


def clear_removed_worktrees(spec: Spec, store: Store) -> None:
    """Worktree directories a kill left renamed aside on their way out (`.removing-*`)."""
    try:
        n = git.clear_removed(spec.worktree_root_path)
    except OSError as exc:
        logger.warning(f"could not finish removing worktrees: {exc}")
        return
    if n:
        record_event(store, "worktrees_removed", f"finished {n} interrupted worktree removal(s)")
