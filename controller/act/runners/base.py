"""The runner interface: what the controller needs from "something that runs an agent".

Kept to start / alive / stop / reap so a remote runner (e.g. Ray Jobs) can implement it too.
The contract between a runner and the rest of the controller is on disk, not in memory: the
start record, the exit record and the log are files at paths the caller chooses, so a
controller restarted at any moment can still observe attempts it launched before.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from controller.state.paths import StatePaths
    from controller.state.store import Store


@dataclass(frozen=True)
class LaunchRequest:
    """Everything needed to start one attempt of one task."""

    task: str
    number: int
    argv: tuple[str, ...]
    cwd: Path
    env: dict[str, str]  # the controller's own variables (ORCHESTRATOR_*): win over all
    log_path: Path
    start_record: Path
    exit_record: Path
    progress_file: Path
    timeout_s: float | None
    kill_grace_s: float = 5.0  # after a timeout: SIGTERM, wait this long, then SIGKILL
    # for runners that build the task branch themselves (remote runners)
    branch: str = ""
    base_sha: str | None = None
    fresh: bool = False  # start the branch over from base_sha (after a merge conflict)
    cpus: float | None = None
    memory_mb: int | None = None
    # the spec's `env:` values (under `env`), and the names of `passEnv:`, whose values the
    # runner takes from where the agent runs (never carried in the request)
    agent_env: dict[str, str] = field(default_factory=dict)
    pass_env: tuple[str, ...] = ()
    # the agent's command before its placeholders were filled, and their values except
    # `worktree`: a remote runner fills them where the agent's checkout is
    command: tuple[str, ...] = ()
    placeholders: dict[str, str] = field(default_factory=dict)

    def local_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """The agent's environment when it runs where `base` is the environment."""
        passed = {k: base[k] for k in self.pass_env if k in base}
        return {**base, **self.agent_env, **passed, **self.env}

    log_limit: int | None = None  # bytes: the log keeps its end within this (None: no cap)
    state_root: Path | None = None  # the state folder the paths above lie in

    @property
    def files_root(self) -> Path:
        """The state folder that files of this attempt are opened from (`state.files`):
        `state_root`, else the folder that holds the log and both records."""
        if self.state_root is not None:
            return self.state_root
        paths = [str(p.absolute()) for p in (self.log_path, self.start_record, self.exit_record)]
        return Path(os.path.commonpath(paths))

    stdin_path: Path | None = None  # the agent's stdin (the prompt file); /dev/null if None
    setup: tuple[str, ...] | None = None  # run in `cwd` before the agent (its `setup`)
    setup_log: Path | None = None
    stream: str | None = None  # the agent's output format the shim follows (a preset's)
    stream_record: Path | None = None  # where the shim keeps what it read from the stream


@dataclass(frozen=True)
class Launched:
    """Identity of a started attempt: (pid, start_id / create_time) survives pid reuse and
    wall-clock steps (`state.identity`); a remote runner identifies it by `handle` instead
    (pid, start_id and create_time are then None)."""

    pid: int | None
    create_time: float | None
    started_at: float
    handle: str | None = None
    start_id: str | None = None


class Runner(Protocol):
    """How agents run. The local runner starts detached processes in worktrees on this
    machine; a remote runner (Ray) runs them elsewhere and reports through the same files."""

    # True when agents work in worktrees on this machine (the controller prepares them)
    local_worktrees: bool
    # how often to poll while attempts run, for runners whose exits no file event announces
    poll_interval_s: float | None

    def start(self, req: LaunchRequest) -> Launched: ...

    def alive(
        self, pid: int | None, create_time: float | None, start_id: str | None = None
    ) -> bool: ...

    def stop(
        self,
        pid: int | None,
        create_time: float | None,
        grace_s: float = 5.0,
        handle: str | None = None,
        start_id: str | None = None,
    ) -> bool:
        """Stop the attempt (its whole process group, or its job); True if it was running."""
        ...

    def reap(self) -> None:
        """Collect exited children so none stay zombies."""
        ...

    def poll(self, paths: StatePaths, store: Store) -> str | None:
        """Bring the runs directory up to date with the runner's own view (exit records,
        logs); returns why the runner cannot start agents now, or None when it can."""
        ...

    def notify_exits(self, callback: Callable[[], None]) -> None:
        """Call `callback` when an attempt this runner started has ended, if the runner can
        tell (a no-op for runners that only learn it by polling)."""
        ...
