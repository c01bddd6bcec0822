"""Deterministic names: task id -> branch, worktree path, archive ref.

Task ids reach git ref names and file-system paths, so they are validated strictly here,
once, and every other module derives names only through these functions.
"""

from __future__ import annotations

import re
from pathlib import Path

TASK_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
_TASK_ID_RE = re.compile(TASK_ID_PATTERN)
BRANCH_PREFIX = "orchestrator/"
ARCHIVE_PREFIX = "refs/orchestrator/archive/"
MERGE_TRAILER = "Orchestrator-Task"
AGENT_EMAIL_DOMAIN = "agents.orchestrator.invalid"
CONTROLLER_EMAIL = "orchestrator@localhost"  # author and committer of the controller's commits


def task_id_problem(task_id: str) -> str | None:
    """Why `task_id` is not a valid task id, or None when it is."""
    if not isinstance(task_id, str) or not _TASK_ID_RE.fullmatch(task_id):
        return (
            f"task id {task_id!r} must match {TASK_ID_PATTERN} "
            "(lower-case letters, digits, '.', '_', '-'; at most 63 characters)"
        )
    if ".." in task_id:
        return f"task id {task_id!r} must not contain '..'"
    if task_id.endswith(".lock") or task_id.endswith("."):
        return f"task id {task_id!r} must not end with '.lock' or '.' (git ref rules)"
    return None


def _checked(task_id: str) -> str:
    problem = task_id_problem(task_id)
    if problem:
        raise ValueError(problem)
    return task_id


def branch_for(task_id: str) -> str:
    """Short branch name of a task: `orchestrator/<id>`."""
    return BRANCH_PREFIX + _checked(task_id)


def task_for_branch(branch: str) -> str | None:
    """The task id a branch belongs to, or None when it is not a valid task branch."""
    if branch.startswith("refs/heads/"):
        branch = branch[len("refs/heads/") :]
    if not branch.startswith(BRANCH_PREFIX):
        return None
    candidate = branch[len(BRANCH_PREFIX) :]
    return candidate if task_id_problem(candidate) is None else None


def agent_committer(task_id: str) -> dict[str, str]:
    """The committer identity an agent's own commits get (its environment's default): a
    commit an agent puts straight on the integration branch then shows whose it is."""
    return {
        "GIT_COMMITTER_NAME": f"orchestrator agent {_checked(task_id)}",
        "GIT_COMMITTER_EMAIL": f"{task_id}@{AGENT_EMAIL_DOMAIN}",
    }


def archive_ref(task_id: str, number: int) -> str:
    """Ref that keeps a snapshot of a task's work: `refs/orchestrator/archive/<id>/<n>`."""
    return f"{ARCHIVE_PREFIX}{_checked(task_id)}/{int(number)}"


def confined(root: Path, path: Path) -> Path:
    """`path` resolved, guaranteed to lie strictly inside `root`; raises ValueError if not."""
    root_r = root.resolve()
    path_r = path.resolve()
    if path_r == root_r or not path_r.is_relative_to(root_r):
        raise ValueError(f"refusing to touch {path_r}: outside the worktree root {root_r}")
    return path_r


def worktree_path(root: Path, task_id: str) -> Path:
    """Worktree directory of a task: `<root>/<id>`, confined to `root`."""
    return confined(root, root / _checked(task_id))
