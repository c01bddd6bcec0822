"""Early conflict checks: task branches merged in memory onto the integration tip.

`git merge-tree --write-tree` of the tip and a branch answers "would this merge conflict,
and where" without touching any checkout or ref (it writes only tree objects, which git's
garbage collection removes once nothing refers to them). The controller runs the few checks
`core.conflicts.checks_due` picks each pass, after the pass's actions so they never delay a
spawn, and stores the results; every reader sees them through `Observed.conflict_checks`.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from controller import git
from controller.model.observed import ConflictCheck


def _check(repo: git.Repo, tip: str, task: str, sha: str, now: float) -> ConflictCheck | None:
    try:
        merged = git.merge_tree(repo, tip, sha)
    except git.GitError:  # e.g. no common history: the merge itself will say so
        return None
    return ConflictCheck(task, sha, tip, now, merged.conflicts if merged.tree is None else ())


def check_conflicts(
    repo_path: Path, tip: str, branches: Iterable[tuple[str, str]], now: float
) -> list[ConflictCheck]:
    """Merge each (task, branch sha) onto `tip` in memory, two at a time."""
    repo = git.open_repo(repo_path)
    todo = list(branches)
    if len(todo) <= 1:
        found = [_check(repo, tip, task, sha, now) for task, sha in todo]
    else:
        with ThreadPoolExecutor(2, thread_name_prefix="conflicts") as pool:
            found = list(pool.map(lambda item: _check(repo, tip, *item, now), todo))
    return [c for c in found if c is not None]
