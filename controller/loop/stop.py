"""Requests to a running controller through its state folder: `orchestrator stop` writes a
stop request the loop reads; `spawn-parallel` touches a wake-up file (its requests are rows
in the store) so that the loop runs a pass at once.

Files, not signals, so that a request reaches the controller whoever started it and survives
until the controller has seen it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from controller.state import files
from controller.state.paths import StatePaths


@dataclass(frozen=True)
class StopRequest:
    force: bool


def write_stop_request(paths: StatePaths, force: bool) -> None:
    data = b"force" if force else b"graceful"
    files.write_atomic(paths.root, paths.stop_request, data)


def wake_for_requests(paths: StatePaths) -> None:
    """Wake a running controller: new spawn-parallel requests are in the store."""
    files.write_atomic(paths.root, paths.spawn_request, f"{os.getpid()}\n".encode())


def read_stop_request(paths: StatePaths) -> StopRequest | None:
    try:
        data = files.read_bytes(paths.root, paths.stop_request, files.RECORD_LIMIT)
    except (OSError, ValueError):
        return None  # none, or a pipe/symlink planted in its place: no request
    return StopRequest(force=data.strip() == b"force")
