"""Conflicts seen early: which task branches to merge in memory onto the integration tip
this pass, and what a stored check predicts.

The controller merges running and finished task branches onto the tip with `git merge-tree`
(`observe.conflicts`) so that `status`, `diff` and the dashboard say "will conflict with main
in X" before the agent finishes, and the merge train leaves a branch that will conflict out
of its batch. Each branch is checked at most once per `pollInterval`, and at most a few per
pass, oldest check first, so the cost stays bounded whatever the backlog. A check is only
believed while both the tip and the branch are still the commits it merged.
"""

from __future__ import annotations

from collections.abc import Mapping

from controller.model.observed import Observed

CHECKED_PHASES = frozenset({"running", "starting", "merging"})
MAX_CHECKS_PER_PASS = 4


def predicted_conflicts(observed: Observed, task: str) -> tuple[str, ...]:
    """Files `task`'s branch conflicts on with the current tip, per a still-valid check."""
    check = observed.conflict_checks.get(task)
    branch = observed.branches.get(task)
    if check is None or branch is None or observed.integration_sha is None:
        return ()
    if check.base_sha != observed.integration_sha or check.branch_sha != branch.sha:
        return ()
    return check.conflicts


def checks_due(
    observed: Observed,
    phases: Mapping[str, str],
    now: float,
    interval: float,
    limit: int = MAX_CHECKS_PER_PASS,
) -> list[tuple[str, str]]:
    """(task, branch sha) of the branches to check now: running or waiting to merge, not
    checked against the current tip and branch, and not checked in the last `interval`."""
    tip = observed.integration_sha
    if tip is None:
        return []
    due: list[tuple[float, str, str]] = []
    for task, phase in phases.items():
        branch = observed.branches.get(task)
        if phase not in CHECKED_PHASES or branch is None or branch.merged or branch.sha == tip:
            continue
        check = observed.conflict_checks.get(task)
        if check is None:
            due.append((-1.0, task, branch.sha))
        elif (check.base_sha, check.branch_sha) != (tip, branch.sha) and (
            now - check.checked_at >= interval
        ):
            due.append((check.checked_at, task, branch.sha))
    due.sort()
    return [(task, sha) for _, task, sha in due[:limit]]


def conflict_note(files: tuple[str, ...], branch: str, shown: int = 3) -> str:
    """How a predicted conflict reads in a reason: `will conflict with main in a.txt`."""
    names = ", ".join(files[:shown]) + (
        f" (+{len(files) - shown} more)" if len(files) > shown else ""
    )
    return f"will conflict with {branch} in {names}"
