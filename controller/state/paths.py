"""Where runtime state lives on disk (the `state/` directory) and how files in it are named.

One place for every path so that the controller, the shim, `status` and tests agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from controller.model.names import task_id_problem
from controller.state import files


@dataclass(frozen=True)
class StatePaths:
    root: Path

    @property
    def db(self) -> Path:
        return self.root / "orchestrator.db"

    @property
    def lock(self) -> Path:
        return self.root / "controller.lock"

    @property
    def stop_request(self) -> Path:
        return self.root / "stop-request"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def controller_log(self) -> Path:
        return self.logs / "controller.log"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def scratch(self) -> Path:
        return self.root / "scratch"

    def _task(self, base: Path, task: str) -> Path:
        if task_id_problem(task):
            raise ValueError(task_id_problem(task))
        return base / task

    def task_runs(self, task: str) -> Path:
        return self._task(self.runs, task)

    def start_record(self, task: str, number: int) -> Path:
        return self.task_runs(task) / f"{number}.start.json"

    def exit_record(self, task: str, number: int) -> Path:
        return self.task_runs(task) / f"{number}.exit.json"

    def progress_file(self, task: str, number: int) -> Path:
        return self.task_runs(task) / f"{number}.progress"

    def task_log(self, task: str, number: int) -> Path:
        return self._task(self.logs, task) / f"{number}.log"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    def ignored_archive(self, task: str, number: int) -> Path:
        """Where the ignored files of a removed worktree are kept (`act.ignored`)."""
        return self._task(self.archive, task) / f"{number}.tar.gz"

    def verify_log(self, task: str, number: int) -> Path:
        return self._task(self.logs, task) / f"{number}.verify.log"

    def ensure(self) -> None:
        """The state folder and its sub-folders, as real directories readable by the user
        only (0700); symlinks planted in their place are dropped, never followed. A state
        folder an older release made 0755 is tightened (only one that holds our database:
        never some other folder the path was pointed at)."""
        ours = os.path.isfile(self.db) and not os.path.islink(self.db)
        files.ensure_dirs(self.root, self.logs, self.runs, self.scratch, tighten=ours)
