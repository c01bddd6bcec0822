"""The runner interface: what the controller needs from "something that runs an agent".

Kept to start / alive / stop / reap so a remote runner (e.g. Ray Jobs) can implement it too.
The contract between a runner and the rest of the controller is on disk, not in memory: the
start record, the exit record and the log are files at paths the caller chooses, so a
controller restarted at any moment can still observe attempts it launched before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class LaunchRequest:
    """Everything needed to start one attempt of one task."""

    task: str
    number: int
    argv: tuple[str, ...]
    cwd: Path
    env: dict[str, str]  # added to the controller's environment (ORCHESTRATOR_* etc.)
    log_path: Path
    start_record: Path
    exit_record: Path
    progress_file: Path
    timeout_s: float | None
    kill_grace_s: float = 5.0  # after a timeout: SIGTERM, wait this long, then SIGKILL


@dataclass(frozen=True)
class Launched:
    """Identity of a started attempt: (pid, create_time) survives pid reuse."""

    pid: int
    create_time: float
    started_at: float


class Runner(Protocol):
    def start(self, req: LaunchRequest) -> Launched: ...

    def alive(self, pid: int | None, create_time: float | None) -> bool: ...

    def stop(self, pid: int, create_time: float | None, grace_s: float = 5.0) -> bool:
        """Kill the attempt's whole process group; True if it was alive."""
        ...

    def reap(self) -> None:
        """Collect exited children so none stay zombies."""
        ...


def read_record(path: Path) -> dict[str, Any] | None:
    """A start/exit record as a dict, or None when missing or unreadable (never raises)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
