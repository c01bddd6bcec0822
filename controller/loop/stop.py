"""Stop requests: `orchestrator stop` writes one into the state folder; the loop reads it.

A file, not a signal, so that the request reaches the controller whoever started it and
survives until the controller has seen it.
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


def read_stop_request(paths: StatePaths) -> StopRequest | None:
    try:
        text = paths.stop_request.read_text().strip()
    except OSError:
        return None
    return StopRequest(force=text == "force")
