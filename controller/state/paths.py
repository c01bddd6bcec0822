"""Where runtime state lives on disk (the `state/` directory) and how files in it are named.

One place for every path so that the controller, the shim, `status` and tests agree.
"""

from __future__ import annotations

import hashlib
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
    def spawn_request(self) -> Path:
        """Touched by `spawn-parallel` to wake a running controller (the request itself is a
        row in the store)."""
        return self.root / "spawn-request"

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

    def prompt_file(self, task: str, number: int) -> Path:
        """The composed prompt: the agent's stdin and `$ORCHESTRATOR_PROMPT_FILE` (0600)."""
        return self.task_runs(task) / f"{number}.prompt"

    def stream_record(self, task: str, number: int) -> Path:
        """What the shim read from a preset agent's output stream."""
        return self.task_runs(task) / f"{number}.stream.json"

    def usage_file(self, task: str, number: int) -> Path:
        """Where any agent may report its usage (`$ORCHESTRATOR_USAGE_FILE`)."""
        return self.task_runs(task) / f"{number}.usage.json"

    def agent_home(self, task: str, number: int) -> Path:
        """A preset agent's own config and temp folders for one attempt."""
        return self._task(self.root / "agents", task) / str(number)

    def agent_runtime(self, task: str, number: int) -> Path:
        """A preset agent's runtime folder (`XDG_RUNTIME_DIR`) for one attempt: kept short,
        since a Unix socket path in it must stay under 104 bytes (a longer one makes Claude
        Code fall back to a shared folder in /tmp)."""
        self._task(self.root, task)  # the task id is checked like everywhere else
        digest = hashlib.sha256(f"{task}/{number}".encode()).hexdigest()[:10]
        return self.root / "run" / digest

    def task_log(self, task: str, number: int) -> Path:
        return self._task(self.logs, task) / f"{number}.log"

    def verify_log(self, task: str, number: int) -> Path:
        return self._task(self.logs, task) / f"{number}.verify.log"

    def setup_log(self, task: str, number: int) -> Path:
        return self._task(self.logs, task) / f"{number}.setup.log"

    def ensure(self) -> None:
        """The state folder and its sub-folders, as real directories readable by the user
        only (0700); symlinks planted in their place are dropped, never followed. A state
        folder an older release made 0755 is tightened (only one that holds our database:
        never some other folder the path was pointed at)."""
        ours = os.path.isfile(self.db) and not os.path.islink(self.db)
        files.ensure_dirs(self.root, self.logs, self.runs, self.scratch, tighten=ours)
