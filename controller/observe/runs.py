"""Reader of the runs directory the agent shim writes (`state/runs/<task>/<n>.*`).

The shim records, outside the controller process, what only it can see: the agent's pid and
create time when it starts (`<n>.start.json`), how it ended (`<n>.exit.json`), what a preset
agent's stream said (`<n>.stream.json`), and the agent may add its usage (`<n>.usage.json`)
and a progress percentage (`<n>.progress`). Because these files are the world's account of a run,
the controller can die and restart at any moment and still learn what happened. A record the
shim was still writing (half-written or corrupt JSON) is treated as missing, never a crash;
the next pass reads it complete.

The agent can write here too, so everything is read through `state.files` (no symlink
followed, no pipe opened, reads capped), and nothing read here names a process to signal:
`assemble` takes the pid from the store (see its docstring).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.model.names import task_id_problem
from controller.model.observed import AgentReport
from controller.observe.reports import parse_report
from controller.state import files
from controller.state.paths import StatePaths

_RECORD_RE = re.compile(r"^([0-9]{1,9})\.(start|exit|stream|usage)\.json$")
PROGRESS_TAIL = 4 * files.KIB  # a percentage on the last line: the end of the file is enough


@dataclass(frozen=True)
class StartRecord:
    pid: int | None = None
    create_time: float | None = None
    started_at: float | None = None
    handle: str | None = None  # a remote runner's id for the attempt (e.g. "ray:<job id>")


@dataclass(frozen=True)
class ExitRecord:
    exit_code: int | None = None
    ended_at: float | None = None
    timed_out: bool = False
    signal: int | None = None
    setup_failed: bool = False  # the agent's `setup` failed; the agent never ran
    setup_error: str = ""


@dataclass(frozen=True)
class RunRecord:
    """What the runs directory says about one attempt; any record may be missing."""

    task: str
    number: int
    start: StartRecord | None = None
    exit: ExitRecord | None = None
    report: AgentReport | None = None  # the stream record, else the agent's usage file


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _record(data: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(data)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def load_record(path: Path, root: Path | None = None) -> dict[str, Any] | None:
    """A start/exit record as a dict, or None when missing or unreadable (never raises).

    Read through `state.files` from `root` (default: the record's folder): a symlink, a pipe
    or a file over `files.RECORD_LIMIT` counts as unreadable, and nothing blocks.
    """
    try:
        data = files.read_bytes(path.parent if root is None else root, path, files.RECORD_LIMIT)
    except (OSError, ValueError):
        return None
    return _record(data)


def parse_start(data: dict[str, Any]) -> StartRecord:
    return StartRecord(
        pid=_int(data.get("pid")),
        create_time=_float(data.get("create_time")),
        started_at=_float(data.get("started_at")),
        handle=data["handle"] if isinstance(data.get("handle"), str) else None,
    )


def parse_exit(data: dict[str, Any]) -> ExitRecord:
    return ExitRecord(
        exit_code=_int(data.get("exit_code")),
        ended_at=_float(data.get("ended_at")),
        timed_out=data.get("timed_out") is True,
        signal=_int(data.get("signal")),
        setup_failed=data.get("setup_failed") is True,
        setup_error=data["setup_error"][:500] if isinstance(data.get("setup_error"), str) else "",
    )


def _load_at(dir_fd: int, name: str) -> dict[str, Any] | None:
    try:
        return _record(files.read_at(dir_fd, name, files.RECORD_LIMIT))
    except OSError:
        return None


def read_task_runs(
    dir_fd: int, task: str, settled: frozenset[int] = frozenset()
) -> dict[int, RunRecord]:
    """Records of one task directory (an open descriptor), keyed by attempt number (except
    `settled` ones)."""
    starts: dict[int, StartRecord] = {}
    exits: dict[int, ExitRecord] = {}
    reports: dict[tuple[int, str], AgentReport] = {}
    for name in os.listdir(dir_fd):
        m = _RECORD_RE.match(name)
        if not m:
            continue
        number, kind = int(m.group(1)), m.group(2)
        if number in settled:
            continue
        data = _load_at(dir_fd, name)
        if kind in ("stream", "usage"):  # the agent's report (a usage file it wrote itself)
            report = parse_report(data) if data is not None else None
            if report is not None:
                reports[(number, kind)] = report
            continue
        if data is None:
            continue
        if kind == "start":
            starts[number] = parse_start(data)
        else:
            exits[number] = parse_exit(data)
    # a report alone makes no attempt: only the shim's records say one was started
    numbers = starts.keys() | exits.keys()
    return {
        n: RunRecord(
            task=task,
            number=n,
            start=starts.get(n),
            exit=exits.get(n),
            report=reports.get((n, "stream")) or reports.get((n, "usage")),
        )
        for n in sorted(numbers)
    }


def read_runs(
    paths: StatePaths, settled: Mapping[str, frozenset[int]] | None = None
) -> dict[str, dict[int, RunRecord]]:
    """Every task's run records: task id -> attempt number -> record.

    Directories whose name is not a valid task id are ignored, as are unknown files, and
    anything that is not a real directory or regular file (see `state.files`).
    `settled` names attempts whose verdict the store already holds (with their pid, times
    and exit code): their files are not read again, which keeps a long-lived state
    directory cheap to observe.
    """
    settled = settled or {}
    out: dict[str, dict[int, RunRecord]] = {}
    try:
        with files.directory(paths.root, ["runs"]) as runs_fd:
            for name in os.listdir(runs_fd):
                if task_id_problem(name):
                    continue
                try:
                    with files.subdirectory(runs_fd, name) as task_fd:
                        records = read_task_runs(task_fd, name, settled.get(name, frozenset()))
                except OSError:
                    continue
                if records:
                    out[name] = records
    except OSError:
        return out
    return out


def parse_progress(text: str) -> float | None:
    """Percentage from the last non-empty line ("42", "42.5%"), clamped to 0..100."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    value = lines[-1].removesuffix("%").strip()
    try:
        number = float(value)
    except ValueError:
        return None
    if math.isnan(number):
        return None
    return min(100.0, max(0.0, number))


def read_progress(root: Path, path: Path) -> float | None:
    """The progress an agent wrote to its progress file (under the state folder `root`), or
    None if absent or unreadable. Only its last `PROGRESS_TAIL` bytes are read, and a pipe
    or symlink planted in its place is never opened."""
    try:
        data = files.read_bytes(root, path, PROGRESS_TAIL, tail=True)
    except (OSError, ValueError):
        return None
    return parse_progress(data.decode(errors="replace"))
