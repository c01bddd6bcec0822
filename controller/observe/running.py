"""Which controller runs on a repository: the singleton lock in the repository's git folder.

One controller per repository, whatever its spec file and state folder: the lock lives in the
git common directory that every worktree of the repository shares
(`<common>/orchestrator/controller.lock`), held with `flock` for the controller's lifetime
(`state.lock`). Its holder writes its pid, spec file and state folder into it, so a refused
second controller, `status`, `stop` and the day-2 commands can name it from any spec of the
same repository.

What the lock file says is only shown, never acted on: an agent can write in the git folder,
so requests go only to a state folder the caller's own spec names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from controller import git
from controller.state.lock import is_locked, read_holder

LOCK_NAME = "controller.lock"


def lock_path(repo: Path) -> Path:
    """The repository's controller lock: in its git common directory."""
    return git.open_repo(repo).common_dir / "orchestrator" / LOCK_NAME


@dataclass(frozen=True)
class RunningController:
    """The controller holding a repository's lock, as its lock file describes it."""

    pid: int | None
    spec_file: str | None
    state: str | None
    started_at: float | None

    def uses(self, state: Path) -> bool:
        """Whether it runs on the state folder `state` (the caller's spec's)."""
        return self.state is not None and os.path.realpath(self.state) == os.path.realpath(state)


def running_controller(repo: Path) -> RunningController | None:
    """The controller running on the repository at `repo`, or None (nothing is created)."""
    try:
        path = lock_path(repo)
    except git.GitError:
        return None
    if not is_locked(path):
        return None
    holder = read_holder(path) or {}
    pid, spec, state, started = (holder.get(k) for k in ("pid", "spec", "state", "started_at"))
    return RunningController(
        pid=pid if isinstance(pid, int) else None,
        spec_file=spec if isinstance(spec, str) else None,
        state=state if isinstance(state, str) else None,
        started_at=float(started) if isinstance(started, int | float) else None,
    )
