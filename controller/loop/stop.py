"""Requests to a running controller through its state folder: `orchestrator stop` writes a
stop request the loop reads; `spawn-parallel` touches a wake-up file (its requests are rows
in the store) so that the loop runs a pass at once.

Files, not signals, so that a request reaches the controller whoever started it and survives
until the controller has seen it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from controller.state.paths import StatePaths


@dataclass(frozen=True)
class StopRequest:
    force: bool


def write_stop_request(paths: StatePaths, force: bool) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    tmp = paths.stop_request.with_suffix(".tmp")
    tmp.write_text("force" if force else "graceful")
    os.replace(tmp, paths.stop_request)


def wake_for_requests(paths: StatePaths) -> None:
    """Wake a running controller: new spawn-parallel requests are in the store."""
    paths.root.mkdir(parents=True, exist_ok=True)
    tmp = paths.spawn_request.with_suffix(".tmp")
    tmp.write_text(f"{os.getpid()}\n")
    os.replace(tmp, paths.spawn_request)


def read_stop_request(paths: StatePaths) -> StopRequest | None:
    try:
        text = paths.stop_request.read_text().strip()
    except OSError:
        return None
    return StopRequest(force=text == "force")
