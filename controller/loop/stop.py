"""Stop requests: `orchestrator stop` writes one into the state folder; the loop reads it.

A file, not a signal, so that the request reaches the controller whoever started it and
survives until the controller has seen it.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.state import files
from controller.state.paths import StatePaths


@dataclass(frozen=True)
class StopRequest:
    force: bool


def write_stop_request(paths: StatePaths, force: bool) -> None:
    data = b"force" if force else b"graceful"
    files.write_atomic(paths.root, paths.stop_request, data)


def read_stop_request(paths: StatePaths) -> StopRequest | None:
    try:
        data = files.read_bytes(paths.root, paths.stop_request, files.RECORD_LIMIT)
    except (OSError, ValueError):
        return None  # none, or a pipe/symlink planted in its place: no request
    return StopRequest(force=data.strip() == b"force")
